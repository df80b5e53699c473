"""Hostile and unusual inputs and options: each case once broke an extract; now it is handled.

Every value either survives into all outputs or is reported, options outside their range are
usage errors, and the output directory's lock and swap follow its real path.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from hpo_analysis import cli
from hpo_analysis.pipeline import extract
from hpo_analysis.validate import validate_dir

from .conftest import curve, run_cli, write_trial

STUDY = "s_2M_h1"


def _tree(root: Path, n: int = 3) -> Path:
    src = root / "hpo"
    for i in range(n):
        write_trial(
            src,
            STUDY,
            i,
            {
                "trial_number": i,
                "value": 0.5 + i / 10,
                "user_attrs": {"learning_curve": curve(0.7, 0.6)},
            },
        )
    return src


def _usage_error(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(list(argv))
    assert exit_info.value.code == 2
    return capsys.readouterr().err


# --- options -----------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["inf", "-inf", "nan", "0", "-1", "1e999"])
def test_diverge_threshold_must_be_finite_and_positive(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], value: str
) -> None:
    src = _tree(tmp_path)
    err = _usage_error(
        capsys, "extract", str(src), "--out", str(tmp_path / "out"), f"--diverge-threshold={value}"
    )
    assert "finite positive" in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("value", ["-3", "0"])
def test_jobs_must_be_at_least_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], value: str
) -> None:
    src = _tree(tmp_path)
    err = _usage_error(
        capsys, "extract", str(src), "--out", str(tmp_path / "out"), f"--jobs={value}"
    )
    assert "at least 1" in err


def test_config_threshold_must_be_finite(tmp_path: Path) -> None:
    src = _tree(tmp_path)
    config = tmp_path / "hpo-analysis.toml"
    config.write_text("[extract]\ndiverge_threshold = inf\n", encoding="utf-8")
    result = run_cli("extract", str(src), "--out", str(tmp_path / "out"), "--config", str(config))
    assert result.returncode == 2
    assert "diverge_threshold must be a finite positive number" in result.stderr


def test_library_refuses_bad_jobs_and_thresholds(tmp_path: Path) -> None:
    from hpo_analysis.model import Settings

    src = _tree(tmp_path)
    with pytest.raises(ValueError, match="jobs"):
        extract([src], tmp_path / "out", jobs=-3)
    with pytest.raises(ValueError, match="diverge_threshold"):
        extract([src], tmp_path / "out", settings=Settings(diverge_threshold=float("inf")))


def test_out_through_a_symlink_replaces_the_real_directory(tmp_path: Path) -> None:
    src = _tree(tmp_path)
    real = tmp_path / "real"
    link = tmp_path / "link"
    assert not extract([src], real).validation_failures
    link.symlink_to(real, target_is_directory=True)
    result = run_cli("extract", str(src), "--out", str(link))
    assert result.returncode == 0, result.stderr
    assert "rmtree" not in result.stderr
    assert link.is_symlink() and link.resolve() == real.resolve()
    assert validate_dir(real) == []
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == [".real.lock"]


def test_one_lock_for_every_spelling_of_the_output(tmp_path: Path) -> None:
    from hpo_analysis.write.atomic import output_lock

    real = tmp_path / "real"
    real.mkdir()
    link = tmp_path / "link"
    link.symlink_to(real, target_is_directory=True)
    entered = threading.Event()
    with output_lock(real):

        def other() -> None:
            with output_lock(link):
                entered.set()

        worker = threading.Thread(target=other)
        worker.start()
        assert not entered.wait(0.5), "a second writer took the lock through the link"
    worker.join(5)
    assert entered.is_set()
