"""Every family in MODELS honours the contract on points and on images (tiny configs)."""

import pytest
import torch
from synthetic import stream

from gankit.data import DataSpec
from gankit.errors import GankitError
from gankit.models import MODELS
from gankit.models.wgan import WGAN, WGANConfig
from gankit.models.wgan_gp import WGANGP, WGANGPConfig

SPECS = [
    DataSpec("points", "points", (2,)),
    DataSpec("img", "images", (1, 28, 28), num_classes=3),
    DataSpec("rgb", "images", (3, 32, 32), num_classes=4),
    DataSpec("grey2rgb", "unpaired", (1, 32, 32), shape_b=(3, 32, 32)),
    DataSpec("toy2", "unpaired-points", (2,), shape_b=(2,)),
]


def _stream(spec: DataSpec, n: int = 16):
    return stream(spec, n)


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.kind)
def test_family_contract(name, spec):
    cls = MODELS[name]
    if spec.kind not in cls.kinds:
        pytest.skip(f"{name} does not train on {spec.kind}")
    torch.manual_seed(0)
    model = cls(cls.Config.tiny(), spec)
    model.setup()
    logs = model.train_step(_stream(spec), step=30)
    assert {"loss/d", "loss/g"} <= set(logs)
    # detached 0-dim tensors (the trainer reads them on the host only at log steps) or floats
    assert all(
        isinstance(v, float) or (torch.is_tensor(v) and v.dim() == 0 and not v.requires_grad)
        for v in logs.values()
    )
    # translation families map given examples (the trainer passes data.examples): A → B
    kwargs = {"inputs": next(_stream(spec, 7))} if cls.needs_inputs else {}
    gen = torch.Generator().manual_seed(1)
    out = model.sample(5, generator=gen, **kwargs)
    assert out.shape == (5, *(spec.shape_b if cls.needs_inputs else spec.shape))
    again = model.sample(5, generator=torch.Generator().manual_seed(1), **kwargs)
    assert torch.equal(out, again)
    images, nrow = model.preview(4, generator=torch.Generator().manual_seed(1), **kwargs)
    assert nrow >= 1 and len(images) >= 4
    assert set(model.generators()) and model.training_state()["optimizers"]


def test_wgan_clips_critic_weights():
    model = WGAN(WGANConfig.tiny(), SPECS[0])
    model.setup()
    model.train_step(_stream(SPECS[0]), step=30)
    c = model.cfg.clip
    assert all(p.abs().max() <= c + 1e-12 for p in model.critic.parameters())


@pytest.mark.parametrize("cls, cfg", [(WGAN, WGANConfig.tiny()), (WGANGP, WGANGPConfig.tiny())])
def test_critic_score_rises_on_real_and_falls_on_fake(cls, cfg):
    """The WGAN sign convention: critic steps raise E[f(real)] − E[f(fake)] (PITFALL 16)."""
    torch.manual_seed(0)
    cfg.n_critic, cfg.lr = 20, 1e-3
    model = cls(cfg, SPECS[0])
    model.setup()
    real = torch.randn(256, 2) * 0.1 + torch.tensor([2.0, 0.0])
    with torch.no_grad():
        fake = model.generator(torch.randn(256, cfg.z_dim))
        before = model.critic(real).mean() - model.critic(fake).mean()
    for _ in range(cfg.n_critic):
        loss, _ = model.critic_loss(real, fake)
        model.optimizers["d"].zero_grad()
        loss.backward()
        model.optimizers["d"].step()
        model.after_critic_step()
    with torch.no_grad():
        after = model.critic(real).mean() - model.critic(fake).mean()
    assert after > before


def test_batchnorm_in_gp_critic_is_refused():
    with pytest.raises(GankitError, match="BatchNorm.*use norm=layer"):
        WGANGP(WGANGPConfig(critic_norm="batch"), SPECS[0])
    WGANGP(WGANGPConfig(critic_norm="batch", constraint="sn"), SPECS[0])  # no penalty: allowed


def test_spectral_norm_option_has_no_penalty():
    model = WGANGP(WGANGPConfig(constraint="sn", hidden=16, depth=1), SPECS[0])
    model.setup()
    logs = model.train_step(_stream(SPECS[0]), step=0)
    assert "loss/gp" not in logs
    assert any("parametrizations" in n for n, _ in model.critic.named_parameters())


@pytest.mark.parametrize("cls, cfg", [(WGAN, WGANConfig.tiny()), (WGANGP, WGANGPConfig.tiny())])
def test_diagnostics_bracket_the_lipschitz_constant(cls, cfg):
    """Lower bounds <= spectral upper bound; clipping adds its own (looser) bound."""
    model = cls(cfg, SPECS[0])
    model.setup()
    model.train_step(_stream(SPECS[0]), step=30)
    real = torch.randn(64, 2)
    fake = model.sample(64, generator=torch.Generator().manual_seed(0))
    diag = model.diagnostics(real, fake, torch.Generator().manual_seed(0))
    lower = max(diag["eval/lipschitz/lower_grad"], diag["eval/lipschitz/lower_pairs"])
    assert 0 < lower <= diag["eval/lipschitz/upper_spectral"] * (1 + 1e-4)
    if cls is WGAN:
        assert diag["eval/lipschitz/upper_clipping"] >= diag["eval/lipschitz/upper_spectral"]
    else:
        assert "eval/lipschitz/upper_clipping" not in diag


@pytest.mark.parametrize("name", sorted(MODELS))
def test_declared_capabilities_match_what_the_model_does(name):
    """labels_for, translate and directions are declared on GANModel; each family either
    implements them (as its flags say) or refuses them with gankit's one-line error."""
    cls = MODELS[name]
    beyond_points = [s for s in SPECS if s.kind in cls.kinds and s.kind != "points"]
    spec = beyond_points[0] if beyond_points else SPECS[0]
    model = cls(cls.Config.tiny(), spec)
    if cls.conditional:
        assert model.labels_for(6, None).tolist() == [i * spec.num_classes // 6 for i in range(6)]
    else:
        with pytest.raises(GankitError, match="unconditional"):
            model.labels_for(4, 1)
    if cls.needs_inputs:
        assert model.directions() == {
            d: k for d, k in {"AtoB": "g_ab", "BtoA": "g_ba"}.items() if k in model.generators()
        }
        x = torch.rand(3, *spec.shape) * 2 - 1
        assert model.translate(x, "AtoB").shape == (3, *spec.shape_b)
    else:
        assert model.directions() == {}
        with pytest.raises(GankitError, match="does not translate"):
            model.translate(torch.zeros(1, *spec.shape))


def test_catalog_names_mirror_the_registries():
    """The CLI's torch-free name lists (gankit.catalog) equal the real registries."""
    from gankit.catalog import DATASET_NAMES, MODEL_NAMES
    from gankit.data import DATASETS

    assert MODEL_NAMES == tuple(MODELS)
    assert sorted(DATASET_NAMES) == sorted(DATASETS)
