"""Conditional GAN: shapes, label conditioning, reproducibility, every architecture/loss option."""

import itertools

import pytest
import torch

from gankit.data import DataSpec
from gankit.errors import GankitError
from gankit.models.cgan import CGAN, CGANConfig

SPEC = DataSpec("toy", "images", (1, 28, 28), num_classes=10)


def _model(**changes) -> CGAN:
    torch.manual_seed(0)
    cfg = CGANConfig.tiny()
    for key, value in changes.items():
        setattr(cfg, key, value)
    model = CGAN(cfg, SPEC)
    model.setup()
    return model


OPTIONS = list(
    itertools.product(["mlp", "conv"], ["concat", "projection"], ["ns", "hinge", "wgan-gp"])
)


@pytest.mark.parametrize(("arch", "cond", "loss"), OPTIONS)
def test_every_option_trains_and_samples(arch, cond, loss):
    model = _model(arch=arch, cond=cond, loss=loss)
    gen = torch.Generator().manual_seed(0)

    def stream():
        while True:
            yield (
                torch.rand(8, *SPEC.shape, generator=gen) * 2 - 1,
                torch.randint(10, (8,), generator=gen),
            )

    logs = model.train_step(stream(), 0)
    assert torch.isfinite(torch.tensor(list(logs.values()))).all()
    assert ("loss/gp" in logs) == (loss == "wgan-gp")
    x = model.sample(20, generator=torch.Generator().manual_seed(1))
    assert x.shape == (20, 1, 28, 28) and x.min() >= -1 and x.max() <= 1


@pytest.mark.parametrize("arch", ["mlp", "conv"])
def test_label_changes_output_and_same_z_y_reproduce(arch):
    model = _model(arch=arch).eval()
    z = torch.randn(4, model.cfg.z_dim)
    y3, y7 = torch.full((4,), 3), torch.full((4,), 7)
    with torch.no_grad():
        a, b, c = model.generator(z, y3), model.generator(z, y3), model.generator(z, y7)
        d_real = model.discriminator(a, y3)
        d_other = model.discriminator(a, y7)
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)
    assert not torch.allclose(d_real, d_other)


def test_label_blocks_and_range():
    model = _model()
    assert model.labels_for(20, None).tolist() == [k for k in range(10) for _ in range(2)]
    assert model.labels_for(3, 7).tolist() == [7, 7, 7]
    with pytest.raises(GankitError, match="label 12 is out of range"):
        model.labels_for(3, 12)


def test_interpolation_walks_between_two_points_per_row():
    model = _model().eval()
    x = model.sample(30, generator=torch.Generator().manual_seed(0), interpolate=True)
    assert x.shape == (30, 1, 28, 28)
    rows = x.view(10, 3, -1)
    # the middle of each row differs from both ends: the walk moves
    assert (rows[:, 0] - rows[:, 2]).abs().mean() > 0


def test_unlabelled_data_is_refused():
    with pytest.raises(GankitError, match="needs labelled data"):
        CGAN(CGANConfig.tiny(), DataSpec("x", "images", (1, 28, 28), num_classes=0))
