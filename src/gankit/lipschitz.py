"""Lower and upper estimates of the Lipschitz constant of a critic f: R^d → R.

The WGAN critic must be (K-)Lipschitz, ``|f(x) - f(y)| ≤ K ‖x - y‖₂``, for its objective to
estimate the Earth-Mover distance. ``K`` itself cannot be computed for a network, but it can be
bracketed:

* lower bounds, from points: ``max_x ‖∇f(x)‖₂`` and ``max_i |f(x_i) - f(y_i)| / ‖x_i - y_i‖``;
* upper bounds, from weights: ``Π_layers ‖W_l‖₂`` (spectral norms; composition rule
  ``L(g ∘ h) ≤ L(g) L(h)``) and the bound weight clipping to ``[-c, c]`` implies.

Critics must be scalar-output: ``f(x)`` of shape (B,) or (B, 1, ..., 1), one value per sample.
Inputs are torch tensors with the batch first; the norm is the Euclidean norm of the flattened
sample. Models with dropout should be in eval mode, and batch norm in training mode couples the
samples of a batch, so per-sample gradients are then meaningless.
"""

import math
import warnings
from collections.abc import Callable, Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "check_lipschitz",
    "clipping_upper_bound",
    "grad_norm_lower_bound",
    "interpolates",
    "layer_lipschitz_constants",
    "lipschitz_report",
    "pairwise_lower_bound",
    "spectral_upper_bound",
]

_BATCHNORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)
# Layers that never change the Euclidean norm of a difference by more than a factor 1.
_ONE_LIPSCHITZ = (
    nn.ReLU,
    nn.ReLU6,
    nn.Tanh,
    nn.Hardtanh,
    nn.Softplus,
    nn.Identity,
    nn.Flatten,
    nn.Unflatten,
)


# --------------------------------------------------------------------------------------------
# Lower bounds from points
# --------------------------------------------------------------------------------------------


def _scalar_outputs(f: nn.Module | Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
    """``f(x)`` as shape (B,), accepting (B, 1, ..., 1) outputs; vector outputs are refused."""
    out = f(x)
    if out.ndim == 0 or out.shape[0] != x.shape[0] or out[0].numel() != 1:
        raise ValueError(
            f"f must return one scalar per sample, got output shape {tuple(out.shape)} "
            f"for input shape {tuple(x.shape)}"
        )
    return out.reshape(-1)


def _check_batch(x: Tensor, name: str) -> None:
    if not isinstance(x, Tensor):
        raise ValueError(f"{name} must be a torch tensor, got {type(x).__name__}")
    if x.ndim < 2 or x.shape[0] == 0:
        raise ValueError(f"{name} must have shape (B, ...) with B >= 1, got {tuple(x.shape)}")
    if not torch.isfinite(x).all():
        raise ValueError(f"{name} contains NaN or inf")


def _check_pair(x: Tensor, y: Tensor) -> None:
    _check_batch(x, "x")
    _check_batch(y, "y")
    if x.shape != y.shape:
        raise ValueError(f"x and y have different shapes {tuple(x.shape)} vs {tuple(y.shape)}")


def interpolates(a: Tensor, b: Tensor, seed: int | None = None) -> Tensor:
    """Random points on the segments ``[a_i, b_i]``: ``x̂_i = a_i + t_i (b_i - a_i)``, t ~ U[0, 1].

    These are the points at which WGAN-GP penalises ``‖∇f(x̂)‖``.

    Args:
        a: First batch, shape (B, ...).
        b: Second batch, same shape as ``a``.
        seed: Seed of the draw of ``t``; ``None`` draws a fresh one.

    Returns:
        The interpolates, shape (B, ...), detached.
    """
    _check_pair(a, b)
    gen = torch.Generator(device=a.device)
    if seed is None:
        gen.seed()
    else:
        gen.manual_seed(seed)
    shape = (a.shape[0],) + (1,) * (a.ndim - 1)
    t = torch.rand(shape, generator=gen, device=a.device, dtype=a.dtype)
    return (a + t * (b - a)).detach()


def _grad_norms(f: nn.Module | Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
    """Per-sample ``‖∇ₓ f(x_i)‖₂``, shape (B,)."""
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        out = _scalar_outputs(f, x)
        # Summing is exact for per-sample f: sample i's output depends on x_i only.
        (grad,) = torch.autograd.grad(out.sum(), x)
    return grad.flatten(1).norm(dim=1)


def grad_norm_lower_bound(f: nn.Module | Callable[[Tensor], Tensor], x: Tensor) -> float:
    """Lower bound ``L ≥ max_i ‖∇ₓ f(x_i)‖₂`` on the Lipschitz constant of f.

    Valid wherever f is differentiable (almost everywhere for ReLU networks). Evaluate it on
    real, fake and :func:`interpolates` points, where the WGAN-GP constraint acts.

    Args:
        f: Scalar-output critic.
        x: Points, shape (B, ...).

    Returns:
        The largest gradient norm found.
    """
    _check_batch(x, "x")
    return float(_grad_norms(f, x).max())


def _pair_ratios(f: nn.Module | Callable[[Tensor], Tensor], x: Tensor, y: Tensor) -> Tensor:
    """``|f(x_i) - f(y_i)| / ‖x_i - y_i‖`` for pairs at positive distance."""
    with torch.no_grad():
        diff = (_scalar_outputs(f, x) - _scalar_outputs(f, y)).abs()
        dist = (x - y).flatten(1).norm(dim=1)
    keep = dist > 0
    if not keep.any():
        raise ValueError("x and y coincide in every pair; need pairs at positive distance")
    return diff[keep] / dist[keep]


def pairwise_lower_bound(f: nn.Module | Callable[[Tensor], Tensor], x: Tensor, y: Tensor) -> float:
    """Lower bound ``L ≥ max_i |f(x_i) - f(y_i)| / ‖x_i - y_i‖₂`` straight from the definition.

    Needs no differentiability. Pairs with ``x_i = y_i`` are skipped.

    Args:
        f: Scalar-output critic.
        x: First points of the pairs, shape (B, ...).
        y: Second points, same shape.

    Returns:
        The largest difference quotient.
    """
    _check_pair(x, y)
    return float(_pair_ratios(f, x, y).max())


def _segment_points(x: Tensor, y: Tensor, n_points: int) -> Tensor:
    """``x_i + t (y_i - x_i)`` for ``n_points`` evenly spaced t in [0, 1], stacked on the batch."""
    t = torch.linspace(0, 1, n_points, dtype=x.dtype, device=x.device).view(-1, *[1] * x.ndim)
    return (x.unsqueeze(0) + t * (y - x).unsqueeze(0)).flatten(0, 1)


def check_lipschitz(
    f: nn.Module | Callable[[Tensor], Tensor],
    x: Tensor,
    y: Tensor,
    sup_grad: float | None = None,
    n_points: int = 9,
    rtol: float = 1e-4,
) -> dict[str, float]:
    """Check the mean-value bound ``|f(x_i) - f(y_i)| ≤ sup‖∇f‖ · ‖x_i - y_i‖`` on pairs.

    By the mean value theorem ``f(x) - f(y) = ∇f(ξ)·(x - y)`` for some ξ on ``[x, y]``, so the
    bound holds with ``sup`` over the segments. When ``sup_grad`` is None it is estimated as the
    largest gradient norm at ``n_points`` evenly spaced points of every segment. A violation
    (``|Δf| > sup · ‖Δx‖ · (1 + rtol)``) means the gradients or the sup estimate are wrong.

    Args:
        f: Scalar-output critic.
        x: First points of the pairs (e.g. random real samples), shape (B, ...).
        y: Second points, same shape.
        sup_grad: Known bound on ``‖∇f‖``; estimated on the segments when None.
        n_points: Points per segment for the estimate (≥ 2, includes both ends).
        rtol: Relative tolerance for float rounding.

    Returns:
        ``{"pairs", "violations", "max_ratio", "sup_grad"}``; ``max_ratio`` is
        ``max_i |Δf_i| / (sup_grad ‖Δx_i‖)``, at most 1 when the bound holds.
    """
    _check_pair(x, y)
    if n_points < 2:
        raise ValueError(f"n_points must be >= 2, got {n_points}")
    if sup_grad is None:
        sup_grad = grad_norm_lower_bound(f, _segment_points(x, y, n_points))
    ratios = _pair_ratios(f, x, y) / max(sup_grad, torch.finfo(torch.float64).tiny)
    return {
        "pairs": int(ratios.numel()),
        "violations": int((ratios > 1 + rtol).sum()),
        "max_ratio": float(ratios.max()),
        "sup_grad": float(sup_grad),
    }


# --------------------------------------------------------------------------------------------
# Upper bounds from weights
# --------------------------------------------------------------------------------------------


def _leaves(module: nn.Module, prefix: str = "") -> Iterator[tuple[str, nn.Module]]:
    """Layers of a (possibly nested) ``nn.Sequential`` in forward order, with dotted names."""
    if isinstance(module, nn.Sequential):
        for name, child in module.named_children():
            yield from _leaves(child, f"{prefix}.{name}" if prefix else name)
    else:
        yield prefix or type(module).__name__, module


def _unsupported(name: str, module: nn.Module) -> ValueError:
    kind = type(module).__name__
    if isinstance(module, _BATCHNORMS):
        remark = (
            "batch norm couples the samples of a batch in training mode and rescales by "
            "|γ|/sqrt(var + eps) in eval mode; WGAN critics should not use it"
        )
    else:
        remark = (
            "supported: nested nn.Sequential of Linear, Conv2d, ReLU, LeakyReLU, Tanh, "
            "Sigmoid, ELU, Softplus, Identity, Flatten, Dropout (eval)"
        )
    return ValueError(f"unsupported layer {kind} at '{name}' for a Lipschitz bound: {remark}")


def _activation_constant(name: str, module: nn.Module) -> float | None:
    """Lipschitz constant of a parameter-free layer, or None if it is not one."""
    if isinstance(module, _ONE_LIPSCHITZ):
        return 1.0
    if isinstance(module, nn.LeakyReLU):
        return max(1.0, abs(module.negative_slope))
    if isinstance(module, nn.ELU):
        return max(1.0, module.alpha)
    if isinstance(module, nn.Sigmoid):
        return 0.25  # sup σ'(t) = σ'(0) = 1/4; counting it as 1 would also be valid but loose
    if isinstance(module, nn.Dropout):
        if module.training:
            raise ValueError(f"Dropout at '{name}' is in training mode; call f.eval() first")
        return 1.0
    return None


def _current_weight(module: nn.Module) -> Tensor:
    """The weight used in forward, in float64, without side effects on the module.

    For ``parametrizations.spectral_norm`` layers ``module.weight`` is the normalised weight;
    reading it in training mode would run (and store) a power-iteration step, so read it in
    eval mode and restore every submodule's mode afterwards.
    """
    modes = [(m, m.training) for m in module.modules()]
    module.eval()
    try:
        with torch.no_grad():
            weight = module.weight.detach().to(torch.float64).clone()
    finally:
        for m, mode in modes:
            m.training = mode
    return weight


def _matrix_spectral_norm(w: Tensor, n_iter: int, gen: torch.Generator) -> float:
    """``‖W‖₂ = σ_max(W)`` by power iteration on ``WᵀW`` (converges from below)."""
    v = torch.randn(w.shape[1], generator=gen, dtype=w.dtype)
    for _ in range(n_iter):
        v = w.T @ (w @ v)
        norm = v.norm()
        if norm == 0:
            return 0.0
        v = v / norm
    return float((w @ v).norm())


def _operator_norm(
    op: Callable[[Tensor], Tensor], in_shape: tuple[int, ...], n_iter: int, gen: torch.Generator
) -> float:
    """``‖A‖₂`` of a linear map ``op`` on inputs of shape ``in_shape`` by power iteration.

    ``Aᵀu`` is the vector-Jacobian product of ``op`` (for conv2d this is conv_transpose2d with
    the matching output padding), so the adjoint never has to be written out by hand.
    """
    v = torch.randn((1, *in_shape), generator=gen, dtype=torch.float64)
    for _ in range(n_iter):
        v = (v / v.norm()).requires_grad_(True)
        with torch.enable_grad():
            u = op(v)
            (v,) = torch.autograd.grad(u, v, grad_outputs=u.detach())
        if v.norm() == 0:
            return 0.0
    with torch.no_grad():
        return float(op(v / v.norm()).norm())


def _conv2d_operator(module: nn.Conv2d) -> Callable[[Tensor], Tensor]:
    """The linear part of a Conv2d (no bias), as a function of a float64 batch."""
    if module.padding_mode != "zeros":
        raise ValueError(f"Conv2d with padding_mode={module.padding_mode!r} is not supported")
    weight = _current_weight(module)
    m = module
    return lambda z: F.conv2d(z, weight, None, m.stride, m.padding, m.dilation, m.groups)


def _linear_bound(
    name: str, module: nn.Linear, shape: tuple[int, ...] | None, n_iter: int, gen: torch.Generator
) -> tuple[float, tuple[int, ...] | None]:
    if shape is not None and shape[-1] != module.in_features:
        raise ValueError(
            f"Linear at '{name}' expects {module.in_features} input features, got shape {shape}"
        )
    bound = _matrix_spectral_norm(_current_weight(module), n_iter, gen)
    return bound, None if shape is None else (*shape[:-1], module.out_features)


def _conv_bound(
    name: str, module: nn.Conv2d, shape: tuple[int, ...] | None, n_iter: int, gen: torch.Generator
) -> tuple[float, tuple[int, ...]]:
    if shape is None or len(shape) != 3:
        raise ValueError(
            f"Conv2d at '{name}' needs input_shape=(C, H, W) since its norm depends on the input "
            f"size; got the shape {shape} there"
        )
    op = _conv2d_operator(module)
    with torch.no_grad():
        out_shape = tuple(op(torch.zeros((1, *shape), dtype=torch.float64)).shape[1:])
    return _operator_norm(op, shape, n_iter, gen), out_shape


def _reshape_only(module: nn.Module, shape: tuple[int, ...] | None) -> tuple[int, ...] | None:
    """Output shape of a parameter-free layer (only Flatten/Unflatten change it)."""
    if shape is None or not isinstance(module, nn.Flatten | nn.Unflatten):
        return shape
    with torch.no_grad():
        return tuple(module(torch.zeros((1, *shape))).shape[1:])


def layer_lipschitz_constants(
    f: nn.Module, input_shape: Sequence[int] | None = None, n_iter: int = 100, seed: int = 0
) -> list[tuple[str, float]]:
    """Per-layer Lipschitz constants of an ``nn.Sequential`` (possibly nested), in order.

    Linear: ``‖W‖₂`` by power iteration on ``W``. Conv2d: norm of the convolution operator on
    the actual input shape, by power iteration with conv2d and its adjoint. Activations: their
    exact constants (ReLU, Tanh, ... 1; Sigmoid ¼; LeakyReLU(a) max(1, |a|)). Biases do not
    change Lipschitz constants. Power iteration approaches ``‖W‖₂`` from below, so each value
    may undershoot by the iteration's tolerance.

    Args:
        f: The network.
        input_shape: Shape of one sample, e.g. (C, H, W); required when f contains Conv2d.
        n_iter: Power-iteration steps per layer.
        seed: Seed of the power-iteration start vectors.

    Returns:
        ``[(layer name, constant), ...]``.
    """
    gen = torch.Generator().manual_seed(seed)
    shape = None if input_shape is None else tuple(int(s) for s in input_shape)
    constants = []
    for name, layer in _leaves(f):
        if isinstance(layer, nn.Linear):
            value, shape = _linear_bound(name, layer, shape, n_iter, gen)
        elif isinstance(layer, nn.Conv2d):
            value, shape = _conv_bound(name, layer, shape, n_iter, gen)
        elif (value := _activation_constant(name, layer)) is not None:
            shape = _reshape_only(layer, shape)
        else:
            raise _unsupported(name, layer)
        constants.append((name, value))
    return constants


def spectral_upper_bound(
    f: nn.Module, input_shape: Sequence[int] | None = None, n_iter: int = 100, seed: int = 0
) -> float:
    """Upper bound ``L(f) ≤ Π_l L(layer_l)`` from the composition rule ``L(g∘h) ≤ L(g) L(h)``.

    Layer constants come from :func:`layer_lipschitz_constants` (spectral norms of Linear and
    Conv2d layers, exact constants of activations). ``parametrizations.spectral_norm`` layers
    are measured through their normalised ``module.weight``. BatchNorm and other layers raise
    ``ValueError`` naming the layer.

    Args:
        f: An ``nn.Sequential`` (possibly nested) of supported layers.
        input_shape: Shape of one sample; required when f contains Conv2d.
        n_iter: Power-iteration steps per layer.
        seed: Seed of the power-iteration start vectors.

    Returns:
        The product of the layer constants.
    """
    return math.prod(c for _, c in layer_lipschitz_constants(f, input_shape, n_iter, seed))


def _clipped_layer_bound(name: str, layer: nn.Module, c: float) -> float:
    """Largest ``‖W‖₂`` possible for a layer whose weights all lie in ``[-c, c]``."""
    if isinstance(layer, nn.Linear):
        # ‖W‖₂ ≤ ‖W‖_F ≤ c sqrt(out·in), attained by the all-c matrix.
        return c * math.sqrt(layer.out_features * layer.in_features)
    if isinstance(layer, nn.Conv2d):
        # conv = Σ over kernel offsets of (channel-mixing matrix ∘ pixel selection); selections
        # have norm ≤ 1 and each block-diagonal mixing matrix has norm ≤ c sqrt(block size).
        out_ch, in_per_group, kh, kw = layer.weight.shape
        return c * kh * kw * math.sqrt(out_ch // layer.groups * in_per_group)
    value = _activation_constant(name, layer)
    if value is None:
        raise _unsupported(name, layer)
    return value


def clipping_upper_bound(f: nn.Module, c: float) -> float:
    """Lipschitz bound implied by clipping every weight to ``[-c, c]`` (WGAN weight clipping).

    Linear (out, in): ``‖W‖₂ ≤ ‖W‖_F ≤ c·sqrt(out·in)``. Conv2d (C_out, C_in/g, kh, kw):
    ``‖conv‖₂ ≤ c·kh·kw·sqrt((C_out/g)·(C_in/g))`` for any input size (triangle inequality over
    the kernel offsets). Activations contribute their constants; the bound is the product over
    layers. It holds for every clipped network of this architecture, so it is typically far
    above the actual constant, and it is what WGAN's clipping really guarantees.

    Args:
        f: An ``nn.Sequential`` (possibly nested) of supported layers.
        c: Clipping threshold, > 0.

    Returns:
        The product of per-layer worst-case constants.
    """
    if not c > 0 or not math.isfinite(c):
        raise ValueError(f"clipping threshold c must be positive and finite, got {c}")
    return math.prod(_clipped_layer_bound(name, layer, c) for name, layer in _leaves(f))


# --------------------------------------------------------------------------------------------
# Report for `gankit eval`
# --------------------------------------------------------------------------------------------


def _upper_or_nan(compute: Callable[[], float], key: str) -> float:
    """Run an upper-bound computation; NaN plus a warning for unsupported architectures.

    A report for ``gankit eval`` should not fail because one layer type has no bound.
    """
    try:
        return compute()
    except ValueError as err:
        warnings.warn(f"{key} unavailable: {err}", stacklevel=3)
        return math.nan


def lipschitz_report(
    f: nn.Module,
    x_real: Tensor,
    x_fake: Tensor,
    input_shape: Sequence[int] | None = None,
    clip: float | None = None,
    seed: int = 0,
) -> dict[str, float]:
    """Bracket the critic's Lipschitz constant: lower bounds ≤ L(f) ≤ upper bounds.

    Lower: ``max ‖∇f‖`` on real, fake and interpolated points; ``max |Δf| / ‖Δx‖`` on (real,
    fake) and (real, interpolate) pairs. Upper: :func:`spectral_upper_bound` and, with ``clip``,
    :func:`clipping_upper_bound`; NaN with a warning for unsupported architectures.

    Args:
        f: Scalar-output critic.
        x_real: Real batch (B, ...); x_fake: generated batch, both cut to the smaller size.
        input_shape: Shape of one sample; defaults to ``x_real.shape[1:]``.
        clip: Weight-clipping threshold, if the critic was trained with clipping.
        seed: Seed of the interpolates and power iterations.

    Returns:
        ``lipschitz/{lower_grad, lower_pairs, upper_spectral[, upper_clipping]}``.
    """
    real, fake = (t[: min(len(x_real), len(x_fake))].detach() for t in (x_real, x_fake))
    mixed, shape = interpolates(real, fake, seed), input_shape or tuple(real.shape[1:])
    pairs = max(pairwise_lower_bound(f, real, fake), pairwise_lower_bound(f, real, mixed))
    report = {
        "lipschitz/lower_grad": grad_norm_lower_bound(f, torch.cat([real, fake, mixed])),
        "lipschitz/lower_pairs": pairs,
    }
    report["lipschitz/upper_spectral"] = _upper_or_nan(
        lambda: spectral_upper_bound(f, shape, seed=seed), "lipschitz/upper_spectral"
    )
    if clip is not None:
        report["lipschitz/upper_clipping"] = _upper_or_nan(
            lambda: clipping_upper_bound(f, clip), "lipschitz/upper_clipping"
        )
    return report
