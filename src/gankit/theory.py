"""``gankit theory``: the WGAN paper's parallel-lines example: closed form, from samples, learned.

P_0 is the law of ``(0, Z)`` and P_θ the law of ``(θ, Z)``, ``Z ~ U[0, 1]``, two vertical segments
in R². For θ ≠ 0 they are disjoint, so ``TV = 1``, ``KL = inf`` and ``JS = log 2`` whatever θ is,
while ``W(P_0, P_θ) = |θ|`` (Arjovsky et al., 2017, Example 1 and Figure 1).
:func:`parallel_lines_study` puts three views of this side by side:

* closed form, from :func:`gankit.distances.parallel_lines`;
* sample estimates, from :func:`gankit.distances.parallel_lines_estimates` (histogram plug-in for
  TV, KL and JS on a fixed grid, exact empirical optimal transport for EM);
* learned: for each θ a WGAN-GP critic f estimates ``W ≈ E[f(x_0)] - E[f(x_θ)]`` and a GAN
  discriminator D is trained with binary cross-entropy; autograd then gives the derivative in θ of
  each generator objective, with ``x_θ = (θ, z)`` built from θ as a differentiable parameter.
  The critic's derivative is ``≈ sign(θ)``; the saturating GAN objective ``E[log(1 - D(x_θ))]``
  has a derivative ``≈ 0`` once D separates the segments.
"""

import argparse
import json
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display needed; must precede pyplot
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import Tensor, nn  # noqa: E402

from gankit.distances import parallel_lines, parallel_lines_estimates  # noqa: E402
from gankit.errors import GankitError  # noqa: E402
from gankit.losses import (  # noqa: E402
    d_loss_bce,
    d_loss_wasserstein,
    g_loss_minimax,
    g_loss_nonsaturating,
    g_loss_wasserstein,
    gradient_penalty,
)
from gankit.nn import MLP  # noqa: E402

__all__ = ["HIST_BINS", "HIST_BOUNDS", "learned_at", "parallel_lines_study", "run_theory"]

# Fixed histogram grid for the JS/TV/KL estimates. 105 columns over [-1.05, 1.05] are 0.02 wide
# and centred on multiples of 0.02, so x = 0 sits mid-column: any |θ| > 0.01 (half a column)
# lands in another column and is resolved, and every θ of the default grid sits mid-column too.
# With a data-dependent range instead, the grid itself would move with θ.
HIST_BOUNDS = ((-1.05, 1.05), (0.0, 1.0))
HIST_BINS = (105, 10)
THETA_LIMIT = 1.0  # |θ| beyond this would leave the fixed grid

# Learned view: small nets and few steps keep 21 values of θ well under a minute on one core.
NET = {"hidden": 64, "depth": 2, "leaky": 0.2}
BATCH = 256
CRITIC_OPT = {"lr": 1e-3, "betas": (0.0, 0.9)}  # WGAN-GP paper's betas, larger lr for speed
GP_LAMBDA = 10.0
DISC_OPT = {"lr": 2e-3, "betas": (0.5, 0.999)}  # DCGAN betas; a high lr saturates D quickly
# 64-unit MLPs on batches of 256 are too small to split across threads: synchronisation costs
# more than it saves, and far more when other processes share the cores (measured: 4 s with one
# thread, 312 s with two on a busy 2-core machine, same numbers).
TRAIN_THREADS = 1
SEED_STRIDE = 1000  # seed of θ number i is seed * SEED_STRIDE + i, so runs never share seeds
EVAL_SEED_OFFSET = 2**40  # evaluation samples: a stream disjoint from every training seed

DEFAULT_THETAS = tuple(float(t) for t in np.round(np.linspace(-1.0, 1.0, 21), 10))
QUICK = {"thetas": (-1.0, -0.5, -0.2, 0.0, 0.2, 0.5, 1.0), "n": 500, "critic_steps": 400}

FIG1 = "parallel_lines.png"
FIG_LEARNED = "parallel_lines_learned.png"
JSON_NAME = "parallel_lines.json"

TheoryFn = Callable[[nn.Module, Tensor, Tensor, torch.Generator], Tensor]


# --------------------------------------------------------------------------------------------
# Samples with θ as a differentiable parameter
# --------------------------------------------------------------------------------------------


def _segment(theta: Tensor, z: Tensor) -> Tensor:
    """Points ``(θ, z_i)`` as (n, 2); when θ requires grad, so do they (x_θ is a function of θ)."""
    return torch.stack([theta * torch.ones_like(z), z], dim=1)


def _draw(theta: float, n: int, gen: torch.Generator) -> tuple[Tensor, Tensor]:
    """n points of P_0 and n of P_θ, with independent ``Z ~ U[0, 1]`` for each set."""
    z = torch.rand(2, n, generator=gen)
    return _segment(torch.tensor(0.0), z[0]), _segment(torch.tensor(theta), z[1])


# --------------------------------------------------------------------------------------------
# Training the two models for one fixed θ
# --------------------------------------------------------------------------------------------


def _wgan_gp_loss(f: nn.Module, x0: Tensor, x_theta: Tensor, gen: torch.Generator) -> Tensor:
    """Critic loss ``E[f(x_θ)] - E[f(x_0)] + λ E[(‖∇f(x̂)‖₂ - 1)²]`` (x̂ on segments x_0–x_θ)."""
    penalty = gradient_penalty(f, x0, x_theta, generator=gen)
    return d_loss_wasserstein(f(x0), f(x_theta)) + GP_LAMBDA * penalty


def _bce_loss(d: nn.Module, x0: Tensor, x_theta: Tensor, gen: torch.Generator) -> Tensor:
    """Discriminator loss ``-E[log D(x_0)] - E[log(1 - D(x_θ))]``, D = sigmoid(logit)."""
    return d_loss_bce(d(x0), d(x_theta))


def _point_net() -> nn.Module:
    """MLP R² → R with raw scores of shape (B,), LeakyReLU and no normalisation layer.

    No batch norm, since the gradient penalty is per sample. LeakyReLU rather than ReLU: with
    ReLU some initialisations let every unit die on the strip between the two segments; the
    critic is then flat there, ``∇f = 0`` and the penalty's own gradient vanishes, so it stays
    stuck with loss λ (2 of 150 (seed, θ) runs of 500 steps; none with LeakyReLU).
    """
    return nn.Sequential(MLP(2, 1, **NET), nn.Flatten(0))


def _train(
    loss_fn: TheoryFn, opt_kw: dict[str, Any], theta: float, steps: int, seed: int
) -> nn.Module:
    """Train a fresh MLP on ``loss_fn`` with real x_0 and fake x_θ, fresh samples every step."""
    # fork_rng keeps the caller's global torch RNG untouched by the weight initialisation.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = _point_net()
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(net.parameters(), **opt_kw)
    for _ in range(steps):
        x0, x_theta = _draw(theta, BATCH, gen)
        loss = loss_fn(net, x0, x_theta, gen)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return net.eval()


def _theta_derivative(
    objective: Callable[[Tensor], Tensor], net: nn.Module, theta: float, z: Tensor
) -> float:
    """``d/dθ objective(net(x_θ))`` at θ, by autograd through ``x_θ = (θ, z)``."""
    theta_t = torch.tensor(theta, requires_grad=True)
    (grad,) = torch.autograd.grad(objective(net(_segment(theta_t, z))), theta_t)
    return float(grad)


def _learned(theta: float, n: int, steps: int, seed: int) -> dict[str, float]:
    """Train both models at θ and measure them on n fresh points per distribution.

    Critic: ``Ŵ = E[f(x_0)] - E[f(x_θ)]`` and ``∂/∂θ (-E[f(x_θ)])``. GAN: the saturating
    ``∂/∂θ E[log(1 - D(x_θ))]``, the non-saturating ``∂/∂θ (-E[log D(x_θ)])``, the final
    loss ``L_D`` and the JS it implies at the optimum, ``ĴS = log 2 - L_D / 2``.
    """
    critic = _train(_wgan_gp_loss, CRITIC_OPT, theta, steps, seed)
    disc = _train(_bce_loss, DISC_OPT, theta, steps, seed)
    return _measure(critic, disc, theta, n, seed)


def _measure(
    critic: nn.Module, disc: nn.Module, theta: float, n: int, seed: int
) -> dict[str, float]:
    """The values :func:`_learned` returns, of a trained critic and discriminator."""
    gen = torch.Generator().manual_seed(seed + EVAL_SEED_OFFSET)  # fresh points, not trained on
    x0, x_theta = _draw(theta, n, gen)
    z = x_theta[:, 1]
    with torch.no_grad():
        em = float(-d_loss_wasserstein(critic(x0), critic(x_theta)))
        d_loss = float(d_loss_bce(disc(x0), disc(x_theta)))
    # g_loss_minimax is E[log(1 - D)] itself (the value G minimises in the minimax game).
    return {
        "critic_em": em,
        "critic_grad": _theta_derivative(g_loss_wasserstein, critic, theta, z),
        "gan_minimax_grad": _theta_derivative(g_loss_minimax, disc, theta, z),
        "gan_nonsaturating_grad": _theta_derivative(g_loss_nonsaturating, disc, theta, z),
        "gan_d_loss": d_loss,
        "gan_js": math.log(2.0) - 0.5 * d_loss,
    }


def learned_at(
    theta: float, *, n: int = 500, steps: int = 200, seed: int = 0
) -> tuple[dict[str, float], nn.Module]:
    """The learned view at one θ (``gankit serve --theory``): a WGAN-GP critic and a BCE
    discriminator trained ``steps`` Adam steps each on :data:`TRAIN_THREADS` threads.

    Returns:
        The values of :func:`_learned` (``critic_em``, ``critic_grad``, ``gan_minimax_grad``,
        ...) and the critic f: (B, 2) → (B,), in eval mode.
    """
    _check_study_inputs([theta], n, steps, seed)
    threads = torch.get_num_threads()
    torch.set_num_threads(TRAIN_THREADS)
    try:
        critic = _train(_wgan_gp_loss, CRITIC_OPT, theta, steps, seed)
        disc = _train(_bce_loss, DISC_OPT, theta, steps, seed)
        return _measure(critic, disc, theta, n, seed), critic
    finally:
        torch.set_num_threads(threads)  # leave the caller's setting as it was


# --------------------------------------------------------------------------------------------
# The study
# --------------------------------------------------------------------------------------------


def _check_study_inputs(
    thetas: Sequence[float], n: int, critic_steps: int, seed: int
) -> list[float]:
    values = [float(t) for t in np.asarray(thetas, dtype=np.float64).reshape(-1)]
    if not values:
        raise GankitError("thetas is empty: give at least one value of θ")
    bad = [t for t in values if not math.isfinite(t) or abs(t) > THETA_LIMIT]
    if bad:
        raise GankitError(f"θ = {bad[0]} is outside [-1, 1], the range of the fixed histogram")
    if n < 10:
        raise GankitError(f"n = {n}: use at least 10 samples per distribution")
    if critic_steps < 1:
        raise GankitError(f"critic_steps = {critic_steps}: train for at least 1 step")
    if seed < 0:
        raise GankitError(f"seed = {seed}: seeds must be >= 0")
    return values


def _protocol(thetas: list[float], n: int, critic_steps: int, seed: int) -> dict[str, Any]:
    width = (HIST_BOUNDS[0][1] - HIST_BOUNDS[0][0]) / HIST_BINS[0]
    return {
        "thetas": thetas,
        "n": n,
        "seed": seed,
        "seed_of_theta_i": f"seed * {SEED_STRIDE} + i",
        "histogram": {
            "bins": list(HIST_BINS),
            "bounds": [list(b) for b in HIST_BOUNDS],
            "column_width": width,
            "resolves_abs_theta_above": width / 2,
        },
        "em_from_samples": "exact optimal transport between the two empirical measures",
        "net": {**NET, "activation": "leaky_relu", "norm": "none"},
        "steps": critic_steps,
        "batch": BATCH,
        "critic": {"loss": "wgan-gp", "gp_lambda": GP_LAMBDA, "adam": CRITIC_OPT},
        "discriminator": {"loss": "bce", "adam": DISC_OPT},
        "torch_threads": TRAIN_THREADS,
    }


def _row(theta: float, n: int, steps: int, seed: int) -> dict[str, Any]:
    """Closed form, sample estimates and learned view at one θ."""
    sample = parallel_lines_estimates(theta, n, seed, HIST_BINS, HIST_BOUNDS)
    return {
        "theta": theta,
        "closed_form": parallel_lines(theta),
        "sample": sample,
        "learned": _learned(theta, n, steps, seed),
    }


def _rows(thetas: list[float], n: int, steps: int, seed: int) -> list[dict[str, Any]]:
    """One :func:`_row` per θ, computed with :data:`TRAIN_THREADS` torch threads."""
    threads = torch.get_num_threads()
    torch.set_num_threads(TRAIN_THREADS)
    try:
        return [_row(t, n, steps, seed * SEED_STRIDE + i) for i, t in enumerate(thetas)]
    finally:
        torch.set_num_threads(threads)  # leave the caller's setting as it was


def _json_safe(obj: Any) -> Any:
    """Replace ±inf/NaN by strings ("inf") so the file is strict JSON that any parser reads."""
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return str(obj)
    return obj


def _prepare_out_dir(out_dir: Path) -> Path:
    if out_dir.exists() and not out_dir.is_dir():
        raise GankitError(f"--out {out_dir} is a file: give a folder for the plots and the JSON")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise GankitError(f"cannot create {out_dir}: {exc.strerror}") from exc
    return out_dir


def parallel_lines_study(
    out_dir: Path,
    *,
    thetas: Sequence[float] = DEFAULT_THETAS,
    n: int = 1000,
    critic_steps: int = 500,
    seed: int = 0,
) -> dict[str, Any]:
    """Reproduce Figure 1 of the WGAN paper and its learned counterpart; write PNGs and JSON.

    Per θ: closed forms ``TV, KL, JS, W`` of (P_0, P_θ); estimates from n samples each (histogram
    on :data:`HIST_BOUNDS` × :data:`HIST_BINS`, resolving ``|θ| > 0.01``; W by exact empirical
    OT); a WGAN-GP critic (λ = 10, ``Ŵ = E f(x_0) - E f(x_θ)``) and a BCE discriminator, each
    trained ``critic_steps`` Adam steps, with the θ-derivatives of their generator objectives.

    Args:
        out_dir: Folder for parallel_lines.png, parallel_lines_learned.png, parallel_lines.json.
        thetas: Offsets in ``[-1, 1]``.
        n: Samples per distribution for the estimates and the learned measurements.
        critic_steps: Training steps of the critic and of the discriminator, per θ.
        seed: Base seed (≥ 0); θ number i uses ``seed * 1000 + i``.

    Returns:
        The JSON content: ``protocol``, ``results`` (per θ: ``closed_form``, ``sample``,
        ``learned``), ``timing``, ``files``; ``inf`` is a float here, ``"inf"`` in the file.
    """
    values = _check_study_inputs(thetas, n, critic_steps, seed)
    out_dir = _prepare_out_dir(Path(out_dir))
    start = time.perf_counter()
    results = _rows(values, n, critic_steps, seed)
    files = _write_plots(results, out_dir)
    study = {
        "protocol": _protocol(values, n, critic_steps, seed),
        "results": results,
        "timing": {"seconds": round(time.perf_counter() - start, 2)},
        "files": files,
    }
    Path(files["json"]).write_text(json.dumps(_json_safe(study), indent=2) + "\n")
    return study


# --------------------------------------------------------------------------------------------
# Plots
# --------------------------------------------------------------------------------------------


def _column(results: list[dict[str, Any]], view: str, key: str) -> np.ndarray:
    return np.array([r[view][key] for r in results], dtype=np.float64)


def _plot_js_closed_form(ax: plt.Axes) -> None:
    """JS is log 2 on both sides of 0 and 0 at θ = 0 exactly: two rays and a point."""
    log2 = math.log(2.0)
    style = {"color": "tab:blue", "lw": 2}
    ax.plot([-1, 0], [log2, log2], label="closed form", **style)
    ax.plot([0, 1], [log2, log2], **style)
    ax.plot([0], [log2], "o", mfc="white", mec="tab:blue", ms=7)  # the value jumps away at 0
    ax.plot([0], [0], "o", color="tab:blue", ms=7)


def _plot_figure1(results: list[dict[str, Any]], path: Path) -> None:
    """Two panels like the paper's Figure 1: JS(P_0, P_θ) and W(P_0, P_θ) against θ."""
    theta = np.array([r["theta"] for r in results])
    fig, (ax_js, ax_em) = plt.subplots(1, 2, figsize=(10, 3.8), dpi=90)
    _plot_js_closed_form(ax_js)
    ax_js.plot(theta, _column(results, "sample", "js"), "x", color="tab:red", label="from samples")
    ax_js.set(title="JS(P_0, P_θ)", xlabel="θ", ylim=(-0.05, 0.8))
    grid = np.linspace(-1, 1, 201)
    ax_em.plot(grid, np.abs(grid), color="tab:blue", lw=2, label="closed form |θ|")
    ax_em.plot(theta, _column(results, "sample", "em"), "x", color="tab:red", label="from samples")
    ax_em.set(title="W(P_0, P_θ)  (Earth-Mover)", xlabel="θ", ylim=(-0.05, 1.1))
    for ax in (ax_js, ax_em):
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _plot_estimates(ax: plt.Axes, theta: np.ndarray, results: list[dict[str, Any]]) -> None:
    grid = np.linspace(-1, 1, 201)
    ax.plot(grid, np.abs(grid), color="tab:blue", lw=1.5, label="W = |θ|")
    ax.plot(
        theta,
        _column(results, "learned", "critic_em"),
        "o",
        color="tab:blue",
        label="WGAN-GP critic: E f(x_0) - E f(x_θ)",
    )
    ax.axhline(math.log(2.0), color="tab:orange", lw=1.5, ls="--", label="log 2")
    ax.plot(
        theta,
        _column(results, "learned", "gan_js"),
        "s",
        color="tab:orange",
        ms=4,
        label="GAN: log 2 - L_D / 2",
    )
    ax.set(title="learned estimates", xlabel="θ", ylim=(-0.05, 1.15))
    ax.legend(loc="upper center", fontsize=7, framealpha=0.95)


def _plot_gradients(ax: plt.Axes, theta: np.ndarray, results: list[dict[str, Any]]) -> None:
    grid = np.linspace(-1, 1, 201)
    ax.plot(grid, np.sign(grid), color="tab:blue", lw=1, ls=":", label="sign(θ)")
    ax.plot(
        theta,
        _column(results, "learned", "critic_grad"),
        "o-",
        color="tab:blue",
        label="WGAN: ∂/∂θ -E f(x_θ)",
    )
    ax.plot(
        theta,
        _column(results, "learned", "gan_minimax_grad"),
        "s-",
        color="tab:orange",
        ms=4,
        label="GAN: ∂/∂θ E log(1 - D(x_θ))",
    )
    ax.set(title="generator gradient in θ", xlabel="θ", ylim=(-1.6, 1.6))
    ax.legend(loc="upper left", fontsize=7)


def _plot_nonsaturating(ax: plt.Axes, theta: np.ndarray, results: list[dict[str, Any]]) -> None:
    ax.plot(
        theta,
        _column(results, "learned", "gan_nonsaturating_grad"),
        "^-",
        color="tab:green",
        ms=4,
        label="GAN: ∂/∂θ -E log D(x_θ)",
    )
    ax.set(title="non-saturating GAN gradient", xlabel="θ", yscale="symlog")
    ax.legend(loc="upper left", fontsize=7)


def _plot_learned(results: list[dict[str, Any]], path: Path) -> None:
    """Learned view: estimates against θ, then the θ-derivatives of the generator objectives."""
    theta = np.array([r["theta"] for r in results])
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.9), dpi=90)
    _plot_estimates(axes[0], theta, results)
    _plot_gradients(axes[1], theta, results)
    _plot_nonsaturating(axes[2], theta, results)
    for ax in axes:
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _write_plots(results: list[dict[str, Any]], out_dir: Path) -> dict[str, str]:
    """Write both figures into ``out_dir``; return the paths of all three output files."""
    _plot_figure1(results, out_dir / FIG1)
    _plot_learned(results, out_dir / FIG_LEARNED)
    files = {"figure1": FIG1, "learned": FIG_LEARNED, "json": JSON_NAME}
    return {key: str(out_dir / name) for key, name in files.items()}


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------


def _summary(study: dict[str, Any]) -> str:
    """One line: sample and critic errors against W = |θ|, and both gradients far from 0."""
    rows = study["results"]
    far = [r["learned"] for r in rows if abs(r["theta"]) >= 0.5] or [r["learned"] for r in rows]
    em_err = max(abs(r["sample"]["em"] - abs(r["theta"])) for r in rows)
    critic_err = max(abs(r["learned"]["critic_em"] - abs(r["theta"])) for r in rows)
    critic_g = np.mean([abs(r["critic_grad"]) for r in far])
    gan_g = np.mean([abs(r["gan_minimax_grad"]) for r in far])
    return (
        f"{len(rows)} values of θ in {study['timing']['seconds']:.1f} s; max |Ŵ - |θ||: samples "
        f"{em_err:.3f}, critic {critic_err:.3f}; mean |∂/∂θ| at |θ| ≥ 0.5: WGAN critic "
        f"{critic_g:.3f}, GAN {gan_g:.2g}"
    )


def run_theory(args: argparse.Namespace) -> None:
    """Run ``gankit theory ACTION``: print the JSON path, then a one-line summary.

    Args:
        args: Parsed arguments with ``theory_action``, ``out``, ``quick`` and ``seed``.
    """
    if args.theory_action != "parallel-lines":
        raise GankitError(f"unknown theory action {args.theory_action!r}: use parallel-lines")
    settings = QUICK if args.quick else {}
    study = parallel_lines_study(Path(args.out), seed=args.seed, **settings)
    print(study["files"]["json"])
    print(_summary(study))
