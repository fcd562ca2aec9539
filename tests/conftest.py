import os

import pytest
import torch

# 2 by default, the cores the suite is sized for; GANKIT_TEST_THREADS=1 re-runs the training
# tests on another float trajectory (thread count changes reduction order), to check that their
# thresholds hold with margin rather than on one lucky run
torch.set_num_threads(int(os.environ.get("GANKIT_TEST_THREADS", "2")))


@pytest.fixture(autouse=True)
def _fixed_global_seed() -> None:
    """Every test starts from the same global RNG state, whatever ran before it, so a test
    that passes once passes on every run and in any order (no CI flakes from unlucky draws)."""
    torch.manual_seed(0)


@pytest.fixture
def tiny_overrides() -> list[str]:
    """Loop settings that keep a test run short and quiet."""
    return ["batch_size=64", "eval_samples=200", "progress=false", "log_every=5"]


@pytest.fixture(scope="session")
def toy_report_runs(tmp_path_factory):
    """Three 4-step gan runs on 8gaussians (tests/report_runs.py), trained once per session."""
    from report_runs import toy_runs

    return toy_runs(tmp_path_factory.mktemp("report-toy"))


@pytest.fixture(scope="session")
def cgan_report_run(tmp_path_factory):
    """A 4-step cGAN on a four-class folder (tests/report_runs.py), trained once."""
    from report_runs import cgan_run

    return cgan_run(tmp_path_factory.mktemp("report-cgan"))


@pytest.fixture(scope="session")
def toy_report_page(toy_report_runs, tmp_path_factory):
    """`gankit report` of the three toy runs, rendered once for test_report and test_browser."""
    from gankit.report import write_report

    return write_report(toy_report_runs, tmp_path_factory.mktemp("pages") / "three.html")


@pytest.fixture(scope="session")
def cgan_report_page(cgan_report_run, tmp_path_factory):
    """`gankit report` of the cGAN run alone, rendered once."""
    from gankit.report import write_report

    return write_report([cgan_report_run], tmp_path_factory.mktemp("pages") / "cgan.html")
