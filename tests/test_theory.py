"""Tests of gankit.theory: the parallel-lines study (closed form, samples, learned) and its CLI."""

import argparse
import contextlib
import io
import json
import math
from pathlib import Path
from typing import Any

import pytest
import torch

from gankit.cli import add_theory_parser
from gankit.errors import GankitError
from gankit.theory import parallel_lines_study, run_theory

LOG2 = math.log(2.0)


def _parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="gankit")
    add_theory_parser(root.add_subparsers(dest="command", required=True))
    return root


def _strict(name: str) -> None:
    raise AssertionError(f"non-standard JSON constant {name}")


@pytest.fixture(scope="module")
def quick(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One `gankit theory parallel-lines --quick` run: its stdout and its JSON, parsed strictly."""
    out = tmp_path_factory.mktemp("theory")
    args = _parser().parse_args(["theory", "parallel-lines", "--quick", "--out", str(out)])
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        run_theory(args)
    study = json.loads((out / "parallel_lines.json").read_text(), parse_constant=_strict)
    rows = {round(r["theta"], 6): r for r in study["results"]}
    return {"out": out, "stdout": stdout.getvalue(), "study": study, "rows": rows}


# ------------------------------------------------------------------ closed form and samples


def test_quick_thetas_cover_both_signs_and_zero(quick: dict[str, Any]) -> None:
    assert sorted(quick["rows"]) == [-1.0, -0.5, -0.2, 0.0, 0.2, 0.5, 1.0]


def test_closed_forms_are_the_analytic_values(quick: dict[str, Any]) -> None:
    for theta, row in quick["rows"].items():
        expected = (
            {"tv": 0.0, "kl": 0.0, "js": 0.0, "em": 0.0}
            if theta == 0
            else {"tv": 1.0, "kl": "inf", "js": LOG2, "em": abs(theta)}
        )
        assert row["closed_form"] == pytest.approx(expected, abs=1e-12), theta


def test_sample_js_is_log2_off_zero_and_zero_at_zero(quick: dict[str, Any]) -> None:
    for theta, row in quick["rows"].items():
        if abs(theta) >= 0.2:
            assert row["sample"]["js"] == pytest.approx(LOG2, abs=1e-9), theta
            assert row["sample"]["tv"] == pytest.approx(1.0, abs=1e-9), theta
    assert quick["rows"][0.0]["sample"]["js"] < 0.02


def test_sample_em_tracks_abs_theta_from_above(quick: dict[str, Any]) -> None:
    for theta, row in quick["rows"].items():
        em = row["sample"]["em"]
        # Every coupling moves each point |θ| horizontally, so the empirical W cannot be smaller.
        assert abs(theta) - 1e-9 <= em <= abs(theta) + 0.05, theta


# ------------------------------------------------------------------ learned view


def test_critic_estimates_em_and_its_gradient_is_sign_theta(quick: dict[str, Any]) -> None:
    for theta, row in quick["rows"].items():
        learned = row["learned"]
        if abs(theta) >= 0.5:
            assert learned["critic_em"] == pytest.approx(abs(theta), abs=0.15), theta
        if abs(theta) >= 0.2:
            grad = learned["critic_grad"]
            assert math.copysign(1.0, grad) == math.copysign(1.0, theta), theta
            assert 0.5 <= abs(grad) <= 1.5, theta
    assert abs(quick["rows"][0.0]["learned"]["critic_em"]) < 0.05


def test_gan_gradient_vanishes_away_from_zero(quick: dict[str, Any]) -> None:
    for theta, row in quick["rows"].items():
        learned = row["learned"]
        if abs(theta) >= 0.5:
            assert abs(learned["gan_minimax_grad"]) < 0.1, theta
            assert abs(learned["gan_minimax_grad"]) < 0.1 * abs(learned["critic_grad"]), theta
            # D separates the segments: its loss is near 0 and the JS it implies near log 2.
            assert learned["gan_d_loss"] < 0.05, theta
            assert learned["gan_js"] == pytest.approx(LOG2, abs=0.03), theta
    # At θ = 0 nothing separates the samples: L_D stays near 2 log 2.
    assert quick["rows"][0.0]["learned"]["gan_d_loss"] == pytest.approx(2 * LOG2, abs=0.05)


# ------------------------------------------------------------------ files, JSON and CLI


def test_files_exist_and_json_has_the_protocol(quick: dict[str, Any]) -> None:
    study, out = quick["study"], quick["out"]
    assert set(study) == {"protocol", "results", "timing", "files"}
    for key, name in [("figure1", "parallel_lines.png"), ("learned", "parallel_lines_learned.png")]:
        path = out / name
        assert study["files"][key] == str(path)
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    protocol = study["protocol"]
    for key in ("thetas", "n", "seed", "histogram", "steps", "batch", "critic", "discriminator"):
        assert key in protocol
    assert protocol["critic"]["gp_lambda"] == 10.0
    row = study["results"][0]
    assert set(row) == {"theta", "closed_form", "sample", "learned"}
    assert set(row["learned"]) >= {"critic_em", "critic_grad", "gan_minimax_grad", "gan_js"}


def test_run_theory_prints_json_path_then_one_summary_line(quick: dict[str, Any]) -> None:
    lines = quick["stdout"].splitlines()
    assert len(lines) == 2
    assert lines[0] == str(quick["out"] / "parallel_lines.json")
    assert lines[1].startswith("7 values of θ")


def test_parser_defaults_and_examples() -> None:
    args = _parser().parse_args(["theory", "parallel-lines"])
    assert (args.out, args.quick, args.seed) == ("theory", False, 0)
    assert _parser().parse_args(["theory", "parallel-lines", "--seed", "3"]).seed == 3
    theory = add_theory_parser(argparse.ArgumentParser().add_subparsers())
    assert "gankit theory parallel-lines --out" in theory.format_help()
    with pytest.raises(SystemExit):
        _parser().parse_args(["theory"])  # the action is required


def test_study_is_reproducible_and_leaves_global_state(tmp_path: Path) -> None:
    kw = {"thetas": [0.5], "n": 50, "critic_steps": 5, "seed": 4}
    threads, rng = torch.get_num_threads(), torch.get_rng_state()
    first = parallel_lines_study(tmp_path / "a", **kw)["results"]
    assert torch.equal(torch.get_rng_state(), rng)
    assert torch.get_num_threads() == threads
    assert parallel_lines_study(tmp_path / "b", **kw)["results"] == first


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"thetas": [1.5]}, "outside"),
        ({"thetas": [float("nan")]}, "outside"),
        ({"thetas": []}, "empty"),
        ({"n": 3}, "at least 10"),
        ({"critic_steps": 0}, "at least 1 step"),
        ({"seed": -1}, "seeds must be >= 0"),
    ],
)
def test_bad_inputs_raise_one_line_errors(tmp_path: Path, kw: dict, message: str) -> None:
    with pytest.raises(GankitError, match=message) as err:
        parallel_lines_study(tmp_path, **kw)
    assert "\n" not in str(err.value)


def test_out_that_is_a_file_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "taken"
    target.write_text("x")
    with pytest.raises(GankitError, match="is a file"):
        parallel_lines_study(target, thetas=[0.5], n=10, critic_steps=1)
