"""docs/configuration.md is generated from the config dataclasses and must match them."""

import dataclasses
import importlib.util
from pathlib import Path
from typing import Literal

from gankit.config import TrainConfig, option, option_rows

ROOT = Path(__file__).resolve().parent.parent


def _tool():
    spec = importlib.util.spec_from_file_location(
        "config_reference", ROOT / "tools" / "config_reference.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_option_rows_reads_types_defaults_and_help():
    @dataclasses.dataclass
    class Example:
        n: int = option(3, "how many", min=1)
        mode: Literal["a", "b"] = option("a", "which one")
        betas: tuple[float, ...] = option((0.5, 0.9), "two numbers")
        weight: float | None = option(None, "none: the default")
        plain: str = "x"

    assert option_rows(Example) == [
        ("n", "int", "3", "how many"),
        ("mode", "a | b", "'a'", "which one"),
        ("betas", "tuple[float, ...]", "(0.5, 0.9)", "two numbers"),
        ("weight", "float | None", "None", "none: the default"),
        ("plain", "str", "'x'", ""),
    ]
    assert option_rows(Example(n=7))[0] == ("n", "int", "7", "how many")


def test_every_train_option_has_help():
    assert all(help_text for *_, help_text in option_rows(TrainConfig))


def test_configuration_reference_is_up_to_date():
    expected = _tool().render()
    current = (ROOT / "docs" / "configuration.md").read_text()
    assert current == expected, (
        "docs/configuration.md differs from the config dataclasses: "
        "run python tools/config_reference.py (or make docs)"
    )


def test_reference_lists_every_family_and_its_defaults():
    from gankit.models import MODELS

    text = _tool().render()
    for name, cls in MODELS.items():
        assert f"## `{name}` ({cls.Config.__name__}" in text
        for key in cls.kind_defaults.get("points", {}):
            assert f"`{key}=" in text
