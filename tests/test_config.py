"""Config resolution: defaults < family defaults < YAML < key=value, and clear errors."""

import dataclasses

import pytest

from gankit.config import TrainConfig
from gankit.errors import GankitError
from gankit.models import MODELS
from gankit.runs import from_dict, from_yaml_file, resolve


def test_precedence_family_yaml_cli(tmp_path):
    cfg = resolve("wgan-gp", "mnist")
    assert cfg.train.steps == MODELS["wgan-gp"].train_defaults["steps"]
    assert cfg.model_config.gp_lambda == 10.0 and tuple(cfg.model_config.betas) == (0.0, 0.9)
    assert cfg.train.ema and not resolve("wgan-gp", "ring").train.ema  # EMA on for images
    toy = resolve("wgan-gp", "8gaussians")  # the authors' toy settings for 2-D data
    assert toy.model_config.gp_lambda == 0.1 and tuple(toy.model_config.betas) == (0.5, 0.9)
    assert resolve("wgan-gp", "8gaussians", None, ["gp_lambda=10"]).model_config.gp_lambda == 10
    yaml_file = tmp_path / "c.yaml"
    yaml_file.write_text("model: wgan-gp\ndata: ring\ntrain: {seed: 5, steps: 7}\n")
    cfg = from_yaml_file(yaml_file, None, None)
    assert (cfg.data, cfg.train.seed, cfg.train.steps) == ("ring", 5, 7)
    cfg = resolve("wgan-gp", "ring", cfg.to_dict(), ["seed=3", "model_config.lr=1e-3"])
    assert (cfg.train.seed, cfg.train.steps, cfg.model_config.lr) == (3, 7, 1e-3)


def test_round_trip_through_dict():
    cfg = resolve("gan", "8gaussians", None, ["betas=0.1,0.2", "ema=true"])
    again = from_dict(cfg.to_dict())
    assert again.to_dict() == cfg.to_dict()
    assert tuple(again.model_config.betas) == (0.1, 0.2) and again.train.ema is True


@pytest.mark.parametrize(
    ("override", "words"),
    [
        ("sed=3", "unknown config key 'sed'; did you mean seed"),
        ("steps=-5", "steps=-5 is too small"),
        ("steps=abc", "steps='abc' is not a valid int"),
        ("lr=fast", "lr='fast' is not a valid float"),
        ("ema=maybe", "not a boolean"),
        ("constraint=xx", "not one of gp, sn"),
        ("noequals", "overrides are key=value"),
        ("steps=2.5", "not a valid int"),
    ],
)
def test_bad_overrides_are_clear(override, words):
    with pytest.raises(GankitError, match=words):
        resolve("wgan-gp", "8gaussians", None, [override])


def test_unknown_yaml_key(tmp_path):
    yaml_file = tmp_path / "c.yaml"
    yaml_file.write_text("model: gan\ndata: ring\ntrain: {stepz: 3}\n")
    with pytest.raises(
        GankitError, match="unknown config key 'train.stepz'; did you mean train.steps"
    ):
        from_yaml_file(yaml_file, None, None)
    yaml_file.write_text("model: gan\ndata: ring\ntrian: {}\n")
    with pytest.raises(GankitError, match="unknown config key 'trian'"):
        from_yaml_file(yaml_file, None, None)
    yaml_file.write_text("model: [gan\n")
    with pytest.raises(GankitError, match="not valid YAML"):
        from_yaml_file(yaml_file, None, None)


def test_unknown_model():
    with pytest.raises(GankitError, match="unknown config key 'wgna'; did you mean wgan"):
        resolve("wgna", "8gaussians")


@pytest.mark.parametrize("name", sorted(MODELS))
def test_flat_keys_are_unambiguous(name):
    """A flat key=value must name exactly one field: train and family fields never collide."""
    train = {f.name for f in dataclasses.fields(TrainConfig)}
    family = {f.name for f in dataclasses.fields(MODELS[name].Config)}
    assert not train & family
    for field in dataclasses.fields(MODELS[name].Config):
        assert field.metadata.get("help"), f"{name}.{field.name} needs help text for the CLI"


def test_discogan_toy_preset_weights_reconstruction_by_ten():
    assert resolve("discogan", "discogan-toy").model_config.recon_weight == 10
    assert resolve("discogan", "sneakers2boots").model_config.recon_weight == 1  # the paper's
    override = resolve("discogan", "discogan-toy", None, ["recon_weight=1"])
    assert override.model_config.recon_weight == 1


@pytest.mark.parametrize("model", ["gan", "wgan", "wgan-gp"])
@pytest.mark.parametrize("data", ["mnist", "fashion-mnist"])
def test_image_presets_have_a_dcgan_latent_where_toys_keep_two(model, data):
    """A 2-D latent is for the 2-D toy sets; images get DCGAN's 100 (and an override still wins)."""
    assert resolve(model, data).model_config.z_dim == 100
    assert resolve(model, "8gaussians").model_config.z_dim == 2
    assert resolve(model, data, None, ["z_dim=64"]).model_config.z_dim == 64


def test_image_wgan_gp_keeps_the_papers_constant_learning_rate():
    images = resolve("wgan-gp", "mnist").model_config
    assert (images.lr, images.lr_decay, images.gp_lambda) == (1e-4, 0.0, 10.0)
    assert tuple(images.betas) == (0.0, 0.9) and images.n_critic == 5
    assert resolve("wgan-gp", "8gaussians").model_config.lr_decay == 1.0  # the toy preset decays
