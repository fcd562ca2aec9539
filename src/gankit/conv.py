"""Conv2d and ConvTranspose2d trained through matrix products over im2col matrices on the CPU.

oneDNN's weight-gradient kernels are the slow third of a convolution's training step: on one
AVX-512 core they reach 24-53% of the fp32 matmul rate on the 4×4 convs of a 64-px DiscoGAN and
a 128-px PatchGAN, 77% on a ResNet block's 3×3 conv (256 channels, 32×32), where one GEMM
∂L/∂W = rows(∂L/∂y)ᵀ · im2col(x) reaches 80-86% with the im2col copy. So ∂L/∂W is that GEMM.
The forward pass and ∂L/∂x stay with oneDNN, which is fast at them (75-95%), except on small
maps (``gemm_sized``: under 8 window positions a side, or a width oneDNN cannot block by 8, as
the 4×4 maps of a 64-px encoder or a PatchGAN's 15×15) where it falls to 29-56% and the GEMMs
reach 43-86%. Narrow layers (``wide_enough``: an RGB input or output, a 1-channel score, 64
channels under a 4×4 kernel) are left to torch entirely: there the GEMMs are no faster.

The modules keep the parameters, state dict and initialisation of ``nn.Conv2d`` /
``nn.ConvTranspose2d`` and compute the same values and gradients up to float rounding (double
backward included, for gradient penalties); FLOP counters see the same FLOPs. Activations and
weights should be channels-last (NHWC): then an im2col row is a run of contiguous channels and
the products need no transposition.
"""

import threading
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.autograd.function import FunctionCtx

# measured on one core: narrower layers are as fast or faster with oneDNN alone (see wide_enough)
MIN_CHANNELS = 64
MIN_WINDOW_CHANNELS = 128


@dataclass(frozen=True)
class Geometry:
    """A convolution's kernel, stride, padding (per side), transposed flag, output padding; and
    whether its forward pass and ∂L/∂x run as GEMMs too (``gemm_sized``)."""

    kernel: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]
    transposed: bool = False
    output_padding: tuple[int, int] = (0, 0)
    all_gemm: bool = False


def gemm_sized(h: int, w: int) -> bool:
    """Whether an h × w map of window positions (a conv's output, a transposed conv's input) is
    one where the GEMMs beat oneDNN (measured on AVX-512: 4×4 and 15×15 yes, 8×8 and 32×32 no)."""
    return min(h, w) < 8 or w % 8 != 0


def im2col(x: Tensor, g: Geometry, positions: tuple[int, int]) -> Tensor:
    """Windows of x (B, C, H, W) as rows: (B·h·w, kh·kw·C), row (b, i, j) the zero-padded
    kh×kw×C window at (i·sh − ph, j·sw − pw), for the (h, w) = ``positions``.

    Outside autograd (the usual backward) the rows are written to a reused buffer: allocating
    them afresh cost more than copying them (3.4 vs 1.2 ms for a 256-channel 32×32 3×3 conv).
    """
    (kh, kw), (sh, sw), (ph, pw) = g.kernel, g.stride, g.padding
    xp = F.pad(x, (pw, pw, ph, ph)) if ph or pw else x
    xp = xp.permute(0, 2, 3, 1)  # (B, H', W', C): a view if x is channels-last
    b, _, _, c = xp.shape
    s_b, s_h, s_w, s_c = xp.stride()
    windows = xp.as_strided((b, *positions, kh, kw, c), (s_b, s_h * sh, s_w * sw, s_h, s_w, s_c))
    if torch.is_grad_enabled():  # a double backward keeps the rows: no shared buffer
        return windows.reshape(-1, kh * kw * c)
    out = _scratch(windows.numel(), x)
    out.view(windows.shape).copy_(windows)
    return out.view(-1, kh * kw * c)


_SCRATCH = threading.local()


def _scratch(numel: int, like: Tensor) -> Tensor:
    """A buffer of ``numel`` elements shared by a thread's im2col calls on ``like``'s device and
    dtype (each is consumed by one matrix product before the next is made)."""
    buffers = _SCRATCH.__dict__.setdefault("buffers", {})
    key = (like.device, like.dtype)
    if key not in buffers or buffers[key].numel() < numel:
        buffers[key] = like.new_empty(numel)
    return buffers[key][:numel]


def col2im(
    cols: Tensor, g: Geometry, batch: int, positions: tuple[int, int], size: tuple[int, int]
) -> Tensor:
    """The adjoint of ``im2col``: rows (B·h·w, kh·kw·C) added into their windows of a zero image
    (B, C, H, W), (H, W) = ``size``; returned channels-last."""
    (kh, kw), (sh, sw), (ph, pw) = g.kernel, g.stride, g.padding
    (h, w), (height, width) = positions, size
    c = cols.shape[1] // (kh * kw)
    rows_h, rows_w = max(height + 2 * ph, (h - 1) * sh + kh), max(width + 2 * pw, (w - 1) * sw + kw)
    image = cols.new_zeros(batch, rows_h, rows_w, c)
    windows = cols.view(batch, h, w, kh, kw, c)
    for u in range(kh):  # one strided add per kernel tap
        for v in range(kw):
            image[:, u : u + (h - 1) * sh + 1 : sh, v : v + (w - 1) * sw + 1 : sw] += windows[
                :, :, :, u, v
            ]
    image = image[:, ph : ph + height, pw : pw + width].permute(0, 3, 1, 2)
    return image.contiguous(memory_format=torch.channels_last)


def rows(x: Tensor) -> Tensor:
    """(B, C, H, W) → (B·H·W, C): pixels as rows (a view for a channels-last x)."""
    return x.permute(0, 2, 3, 1).reshape(-1, x.shape[1])


def weight_matrix(w: Tensor) -> Tensor:
    """W (A, B, kh, kw) → (A, kh·kw·B), the layout of im2col rows (a view when channels-last)."""
    return w.permute(0, 2, 3, 1).reshape(w.shape[0], -1)


def correlate(x: Tensor, w: Tensor, g: Geometry, positions: tuple[int, int]) -> Tensor:
    """Σ over each window of x (B, C, H, W) against W (O, C, kh, kw): (B, O, h, w) at the
    (h, w) = ``positions`` (a conv's forward pass; a transposed conv's ∂L/∂x)."""
    out = im2col(x, g, positions) @ weight_matrix(w).t()
    return out.view(x.shape[0], *positions, -1).permute(0, 3, 1, 2)


def spread(v: Tensor, w: Tensor, g: Geometry, size: tuple[int, int]) -> Tensor:
    """The adjoint of ``correlate``: v (B, O, h, w) times W (O, C, kh, kw) added over each
    position's window of a (B, C, H, W) image (a transposed conv's forward pass; a conv's ∂L/∂x)."""
    return col2im(rows(v) @ weight_matrix(w), g, v.shape[0], v.shape[-2:], size)


def weight_grad(x: Tensor, gy: Tensor, g: Geometry) -> Tensor:
    """∂L/∂W of a convolution of x with output gradient gy, as one GEMM.

    Conv: W (O, C, kh, kw), ∂L/∂W[o, c, u, v] = Σ_{b,i,j} gy[b, o, i, j] · x_pad[b, c, i·s + u,
    j·s + v], i.e. rows(gy)ᵀ · im2col(x). Transposed: W (C, O, kh, kw) and x and gy swap roles,
    rows(x)ᵀ · im2col(gy) over x's positions. Returned channels-last, like a channels-last W.
    """
    if g.transposed:
        left, cols = rows(x), im2col(gy, g, x.shape[-2:])
    else:
        left, cols = rows(gy), im2col(x, g, gy.shape[-2:])
    out, kh, kw = left.shape[1], *g.kernel
    if torch.is_grad_enabled():  # a double backward: ``out=`` has no derivative
        return (left.t() @ cols).view(out, kh, kw, -1).permute(0, 3, 1, 2)
    # a tensor of its own, not a view of the product, so that autograd adds the gradients of
    # the layer's other uses into it in place instead of allocating a sum
    shape = (out, cols.shape[1] // (kh * kw), kh, kw)
    gw = torch.empty(shape, dtype=cols.dtype, device=cols.device, memory_format=torch.channels_last)
    torch.mm(left.t(), cols, out=gw.permute(0, 2, 3, 1).view(out, -1))
    return gw


def _forward(x: Tensor, w: Tensor, b: Tensor | None, g: Geometry) -> Tensor:
    if not g.all_gemm:
        return torch.convolution(
            x, w, b, g.stride, g.padding, (1, 1), g.transposed, g.output_padding, 1
        )
    if g.transposed:
        (h, wd), (sh, sw), (ph, pw) = x.shape[-2:], g.stride, g.padding
        size = ((h - 1) * sh - 2 * ph + g.kernel[0] + g.output_padding[0],
                (wd - 1) * sw - 2 * pw + g.kernel[1] + g.output_padding[1])  # fmt: skip
        y = spread(x, w, g, size)
    else:
        y = correlate(x, w, g, conv_positions(x.shape[-2:], g))
    return y if b is None else y + b.view(1, -1, 1, 1)


def _input_grad(gy: Tensor, x: Tensor, w: Tensor, g: Geometry) -> Tensor:
    if not g.all_gemm:
        return torch.ops.aten.convolution_backward(
            gy, x, w, None, g.stride, g.padding, (1, 1), g.transposed, g.output_padding, 1,
            [True, False, False],
        )[0]  # fmt: skip
    if g.transposed:
        return correlate(gy, w, g, x.shape[-2:])
    return spread(gy, w, g, x.shape[-2:])


def conv_positions(size: tuple[int, int], g: Geometry) -> tuple[int, int]:
    """Output side of a (non-transposed) conv over a ``size`` input."""
    (h, w), (kh, kw), (sh, sw), (ph, pw) = size, g.kernel, g.stride, g.padding
    return (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1


class _GemmConv(torch.autograd.Function):
    """conv(x, W) + b with ∂L/∂W as a GEMM (and all of it as GEMMs when ``g.all_gemm``)."""

    @staticmethod
    def forward(ctx: FunctionCtx, x: Tensor, w: Tensor, b: Tensor | None, g: Geometry) -> Tensor:
        ctx.save_for_backward(x, w)
        ctx.geometry = g
        return _forward(x, w, b, g)

    @staticmethod
    def backward(ctx: FunctionCtx, gy: Tensor) -> tuple[Tensor | None, ...]:
        x, w = ctx.saved_tensors
        g: Geometry = ctx.geometry
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        gx = _input_grad(gy, x, w, g) if need_x else None
        gw = weight_grad(x, gy, g) if need_w else None
        # not by convolution_backward: oneDNN computes ∂L/∂W whenever ∂L/∂b is asked for
        gb = gy.sum((0, 2, 3)) if need_b else None
        return gx, gw, gb, None


def wide_enough(conv: nn.Conv2d | nn.ConvTranspose2d, transposed: bool) -> bool:
    """Whether the GEMMs beat oneDNN on this layer: ``MIN_CHANNELS`` on both sides and
    ``MIN_WINDOW_CHANNELS`` on the side im2col copies (a conv's input, a transposed conv's output),
    or ``MIN_CHANNELS`` there too for 3×3 kernels, whose oneDNN weight gradient is the slowest
    (35-44% of the matmul rate at 64 channels, against 40-48% for 4×4 ones, which tie)."""
    windowed = conv.out_channels if transposed else conv.in_channels
    need = MIN_CHANNELS if conv.kernel_size == (3, 3) else MIN_WINDOW_CHANNELS
    return min(conv.in_channels, conv.out_channels) >= MIN_CHANNELS and windowed >= need


def _geometry(conv: nn.Conv2d | nn.ConvTranspose2d, x: Tensor, transposed: bool) -> Geometry | None:
    """How to run ``conv`` on x; None: as torch does (also on GPUs, whose kernels are fine, and
    under bf16 autocast, which the GEMM path does not follow: torch's own conv casts for it)."""
    simple = (
        x.device.type == "cpu"
        and x.dtype == torch.float32
        and not torch.is_autocast_enabled("cpu")
        and x.dim() == 4
        and conv.groups == 1
        and conv.dilation == (1, 1)
        and conv.padding_mode == "zeros"
        and not isinstance(conv.padding, str)
    )
    if not simple or not wide_enough(conv, transposed):
        return None
    g = Geometry(conv.kernel_size, conv.stride, conv.padding, transposed, conv.output_padding)
    positions = x.shape[-2:] if transposed else conv_positions(x.shape[-2:], g)
    if gemm_sized(*positions):
        g = Geometry(g.kernel, g.stride, g.padding, transposed, g.output_padding, all_gemm=True)
    return g


def _gemm_allowed(conv: nn.Module) -> bool:
    """The GEMM path is on and not being traced: torch.compile (torch 2.13) fails on the
    autograd.Function at some shapes (an AssertionError in dynamo's higher-order ops, seen on a
    64-px DiscoGAN), so compiled networks trace torch's own convolutions."""
    return bool(getattr(conv, "gemm", True)) and not torch.compiler.is_compiling()


class Conv2d(nn.Conv2d):
    """``nn.Conv2d`` trained through GEMMs (see the module docstring); with ``gemm`` off, exactly
    ``nn.Conv2d`` (see :func:`use_torch_kernels`)."""

    gemm = True

    def forward(self, x: Tensor) -> Tensor:
        g = _geometry(self, x, transposed=False) if _gemm_allowed(self) else None
        if g is None:
            return super().forward(x)
        return _GemmConv.apply(x, self.weight, self.bias, g)


class ConvTranspose2d(nn.ConvTranspose2d):
    """``nn.ConvTranspose2d`` trained through GEMMs (see the module docstring); with ``gemm``
    off, exactly ``nn.ConvTranspose2d``."""

    gemm = True

    def forward(self, x: Tensor, output_size: list[int] | None = None) -> Tensor:
        g = _geometry(self, x, transposed=True) if _gemm_allowed(self) else None
        if g is None or output_size is not None:
            return super().forward(x, output_size)
        return _GemmConv.apply(x, self.weight, self.bias, g)


def use_torch_kernels(module: nn.Module) -> int:
    """Turn the GEMM path off in every gankit convolution of ``module``: each then runs
    ``nn.Conv2d.forward`` / ``nn.ConvTranspose2d.forward`` (oneDNN on a CPU, cuDNN on CUDA).

    The modules keep their class rather than becoming torch's: a spectrally normalised conv is an
    instance of a class torch's parametrization derived from this one, which cannot be swapped
    without torch internals; weights and state dicts are the same either way. Returns how many
    convolutions were switched.
    """
    switched = 0
    for m in module.modules():
        if isinstance(m, Conv2d | ConvTranspose2d):
            m.gemm = False
            switched += 1
    return switched
