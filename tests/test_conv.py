"""The speed layers of the translation nets: GEMM-trained convolutions, channels-last instance
norm and Adam. Each must compute what its torch counterpart computes."""

import pytest
import torch
from torch import nn

from gankit.conv import (
    MIN_CHANNELS,
    MIN_WINDOW_CHANNELS,
    Conv2d,
    ConvTranspose2d,
    Geometry,
    _GemmConv,
    _geometry,
)
from gankit.nn import InstanceNorm2d
from gankit.optim import ChannelsLastAdam

CL = torch.channels_last

# (x shape, weight shape, kernel, stride, padding, transposed, output padding)
GEOMETRIES = [
    ((2, 3, 9, 8), (4, 3, 3, 3), (3, 3), (1, 1), (0, 0), False, (0, 0)),
    ((2, 3, 9, 8), (4, 3, 4, 4), (4, 4), (2, 2), (1, 1), False, (0, 0)),
    ((2, 3, 9, 8), (4, 3, 3, 2), (3, 2), (2, 1), (1, 0), False, (0, 0)),
    ((2, 3, 5, 4), (3, 4, 4, 4), (4, 4), (2, 2), (1, 1), True, (0, 0)),
    ((2, 3, 5, 4), (3, 4, 3, 3), (3, 3), (2, 2), (1, 1), True, (1, 1)),
    ((1, 3, 5, 6), (3, 2, 3, 3), (3, 3), (2, 2), (0, 0), True, (1, 0)),
]


@pytest.mark.parametrize("all_gemm", [False, True])
@pytest.mark.parametrize("layout", [torch.contiguous_format, CL])
@pytest.mark.parametrize(("x_shape", "w_shape", *"kspto"), GEOMETRIES)
def test_gemm_conv_computes_torchs_values_and_gradients(
    x_shape, w_shape, k, s, p, t, o, layout, all_gemm
):
    g = Geometry(k, s, p, t, o, all_gemm=all_gemm)
    x = torch.randn(x_shape, dtype=torch.float64).contiguous(memory_format=layout)
    w = torch.randn(w_shape, dtype=torch.float64).contiguous(memory_format=layout)
    b = torch.randn(w_shape[1] if t else w_shape[0], dtype=torch.float64)
    inputs = [v.requires_grad_() for v in (x, w, b)]
    ours = _GemmConv.apply(x, w, b, g)
    ref = torch.convolution(x, w, b, s, p, (1, 1), t, o, 1)
    gy = torch.randn_like(ref)
    assert torch.allclose(ours, ref)
    for a, r in zip(
        torch.autograd.grad(ours, inputs, gy), torch.autograd.grad(ref, inputs, gy), strict=True
    ):
        assert torch.allclose(a, r)


@pytest.mark.parametrize("all_gemm", [False, True])
def test_gemm_conv_has_second_derivatives_for_gradient_penalties(all_gemm):
    g = Geometry((3, 3), (2, 2), (1, 1), all_gemm=all_gemm)
    x, w, b = (
        torch.randn(s, dtype=torch.float64, requires_grad=True)
        for s in [(1, 2, 5, 5), (3, 2, 3, 3), (3,)]
    )
    assert torch.autograd.gradgradcheck(lambda *a: _GemmConv.apply(*a, g), (x, w, b))


def test_conv_modules_pick_their_path():
    def path(conv: nn.Module, side: int, transposed: bool = False) -> str:
        g = _geometry(conv, torch.zeros(1, conv.in_channels, side, side), transposed)
        return "torch" if g is None else "all GEMMs" if g.all_gemm else "GEMM for dW"

    wide = Conv2d(MIN_WINDOW_CHANNELS, MIN_WINDOW_CHANNELS, 4, 2, 1)
    assert path(Conv2d(3, MIN_WINDOW_CHANNELS, 4, 2, 1), 8) == "torch"  # an RGB input
    assert path(Conv2d(MIN_CHANNELS, MIN_WINDOW_CHANNELS, 4, 2, 1), 8) == "torch"
    assert path(Conv2d(MIN_CHANNELS, MIN_CHANNELS, 3), 34) == "GEMM for dW"
    assert path(wide, 8) == "all GEMMs"  # a 4×4 output is a GEMM-sized map
    assert path(wide, 32) == "GEMM for dW"  # a 16×16 one is oneDNN's
    up = ConvTranspose2d(MIN_WINDOW_CHANNELS, MIN_WINDOW_CHANNELS, 4, 2, 1)
    assert path(up, 4, transposed=True) == "all GEMMs"


@pytest.mark.parametrize(
    ("cls", "ref_cls", "kwargs", "side"),
    [
        (Conv2d, nn.Conv2d, {"kernel_size": 4, "stride": 2, "padding": 1}, 8),
        (Conv2d, nn.Conv2d, {"kernel_size": 3}, 34),
        (ConvTranspose2d, nn.ConvTranspose2d, {"kernel_size": 4, "stride": 2, "padding": 1}, 4),
        (
            ConvTranspose2d,
            nn.ConvTranspose2d,
            {"kernel_size": 3, "stride": 2, "padding": 1, "output_padding": 1},
            16,
        ),
    ],
)
def test_conv_modules_train_as_torchs(cls, ref_cls, kwargs, side):
    """Same state dict, outputs and gradients as torch's layer, on either path."""
    c = MIN_WINDOW_CHANNELS
    ours, ref = cls(c, c, **kwargs), ref_cls(c, c, **kwargs)
    ref.load_state_dict(ours.state_dict())
    x = torch.randn(2, c, side, side).contiguous(memory_format=CL).requires_grad_()
    y, y_ref = ours(x), ref(x)
    gy = torch.randn_like(y)
    grads = torch.autograd.grad(y, [x, ours.weight, ours.bias], gy)
    grads_ref = torch.autograd.grad(y_ref, [x, ref.weight, ref.bias], gy)
    assert torch.allclose(y, y_ref, atol=1e-5)
    for a, r in zip(grads, grads_ref, strict=True):
        assert torch.allclose(a, r, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("layout", [torch.contiguous_format, CL])
def test_instance_norm_is_the_definition_in_both_layouts(batch, layout):
    """torch 2.13's own instance norm gets the input gradient wrong for a channels-last
    gradient at batch 1; ours must match (x − mean) / sqrt(var + eps) · w + b everywhere."""
    norm = InstanceNorm2d(4).double()
    nn.init.normal_(norm.weight), nn.init.normal_(norm.bias)
    assert set(norm.state_dict()) == set(nn.InstanceNorm2d(4, affine=True).state_dict())
    x = (3 * torch.randn(batch, 4, 5, 6, dtype=torch.float64) + 1).contiguous(memory_format=layout)
    x.requires_grad_()

    def definition(x):
        mean = x.mean((2, 3), keepdim=True)
        var = ((x - mean) ** 2).mean((2, 3), keepdim=True)
        w, b = norm.weight.view(1, -1, 1, 1), norm.bias.view(1, -1, 1, 1)
        return (x - mean) / torch.sqrt(var + norm.eps) * w + b

    y, y_ref = norm(x), definition(x)
    assert y.is_contiguous(memory_format=layout)
    gy = torch.randn_like(x)  # the layout of x, as the next layer's backward gives it
    params = [x, norm.weight, norm.bias]
    assert torch.allclose(y, y_ref)
    for a, r in zip(
        torch.autograd.grad(y, params, gy), torch.autograd.grad(y_ref, params, gy), strict=True
    ):
        assert torch.allclose(a, r)


def _steps(opt: torch.optim.Optimizer, params: list[torch.Tensor], grads: list) -> None:
    for step_grads in grads:
        for p, g in zip(params, step_grads, strict=True):
            p.grad = torch.empty_like(p).copy_(g)  # in p's layout, as autograd gives it
        opt.step()


@pytest.mark.parametrize("amsgrad", [False, True])
def test_channels_last_adam_updates_as_adam_and_aligns_loaded_moments(amsgrad):
    shapes = [(8, 4, 3, 3), (8,), (5, 3)]
    init = [torch.randn(s) for s in shapes]
    grads = [[torch.randn(s) for s in shapes] for _ in range(4)]
    kw = {"lr": 0.1, "betas": (0.5, 0.999), "amsgrad": amsgrad, "fused": True}
    ref = [nn.Parameter(t.clone()) for t in init]
    _steps(torch.optim.Adam(ref, **kw), ref, grads)
    ours = [
        nn.Parameter(t.clone().contiguous(memory_format=CL) if t.dim() == 4 else t.clone())
        for t in init
    ]
    _steps(ChannelsLastAdam(ours, **kw), ours, grads)
    assert all(torch.equal(a, b) for a, b in zip(ref, ours, strict=True))
    assert ours[0].is_contiguous(memory_format=CL)

    # resume from moments of NCHW weights: torch's fused kernel alone would mis-update
    nchw = [nn.Parameter(t.clone()) for t in init]
    first = torch.optim.Adam(nchw, **kw)
    _steps(first, nchw, grads[:2])
    resumed = [
        nn.Parameter(
            t.detach().clone().contiguous(memory_format=CL) if t.dim() == 4 else t.detach().clone()
        )
        for t in nchw
    ]
    opt = ChannelsLastAdam(resumed, **kw)
    opt.load_state_dict(first.state_dict())
    _steps(opt, resumed, grads[2:])
    assert all(torch.equal(a, b) for a, b in zip(ref, resumed, strict=True))
