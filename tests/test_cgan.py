"""Conditional GAN: shapes, label conditioning, reproducibility, every architecture/loss option."""

import itertools

import pytest
import torch

from gankit.data import DataSpec
from gankit.errors import GankitError
from gankit.models.base import frozen
from gankit.models.cgan import CGAN, D_LOSS, G_LOSS, CGANConfig

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
    # no grads are held between steps, and D is trainable again after G's update
    assert all(p.grad is None and p.requires_grad for p in model.parameters())
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


def _stream(seed: int):
    gen = torch.Generator().manual_seed(seed)
    while True:
        yield (
            torch.rand(8, *SPEC.shape, generator=gen) * 2 - 1,
            torch.randint(10, (8,), generator=gen),
        )


def _plain_step(model: CGAN, batches) -> None:
    """The textbook step: zero grads before each backward, D not frozen for G's loss."""
    for _ in range(model.cfg.n_critic):
        real, y = next(batches)
        fake = model.generator(model.noise(len(real), model.cfg.z_dim), y).detach()
        loss_d = model.d_loss(real, fake, y)[0]
        model.optimizers["d"].zero_grad(set_to_none=True)
        loss_d.backward()
        model.optimizers["d"].step()
    fake = model.generator(model.noise(len(real), model.cfg.z_dim), y)
    loss_g = G_LOSS[model.cfg.loss](model.discriminator(fake, y))
    model.optimizers["g"].zero_grad(set_to_none=True)
    loss_g.backward()
    model.optimizers["g"].step()


@pytest.mark.parametrize(("loss", "n_critic"), [("ns", 1), ("wgan-gp", 2)])
def test_frozen_critic_and_early_grad_freeing_learn_the_same(loss, n_critic):
    assert set(D_LOSS) == set(G_LOSS)
    ours, plain = _model(loss=loss, n_critic=n_critic), _model(loss=loss, n_critic=n_critic)
    mine, theirs = _stream(0), _stream(0)
    for step in range(3):
        torch.manual_seed(step)
        ours.train_step(mine, step)
        torch.manual_seed(step)
        _plain_step(plain, theirs)
    for (name, a), b in zip(ours.state_dict().items(), plain.state_dict().values(), strict=True):
        assert torch.equal(a, b), name


def test_frozen_skips_weight_grads_and_restores_flags():
    model = _model()
    model.discriminator.head.bias.requires_grad_(False)  # a flag set by the user stays as it was
    z, y = torch.randn(4, model.cfg.z_dim), torch.arange(4)
    with frozen(model.discriminator):
        score = model.discriminator(model.generator(z, y), y).sum()
    score.backward()
    assert all(p.grad is None for p in model.discriminator.parameters())
    assert all(p.grad is not None for p in model.generator.parameters())
    assert not model.discriminator.head.bias.requires_grad
    assert all(
        p.requires_grad for n, p in model.discriminator.named_parameters() if n != "head.bias"
    )
