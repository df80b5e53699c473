"""Hostile and unusual inputs and options: each case once broke an extract; now it is handled.

Every value either survives into all outputs or is reported, options outside their range are
usage errors, and the output directory's lock and swap follow its real path.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from hpo_analysis import cli
from hpo_analysis.pipeline import extract
from hpo_analysis.validate import validate_dir

from .conftest import curve, read_csv, run_cli, write_trial

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


# --- files: symlinks, devices, FIFOs, encodings -----------------------------------------------


def _manifest(out: Path) -> dict[str, dict[str, str]]:
    return {row["path"]: row for row in read_csv(out / "manifest.csv")}


def test_symlinks_leaving_the_source_are_not_followed(tmp_path: Path) -> None:
    src = _tree(tmp_path)
    outside = tmp_path / "elsewhere"
    write_trial(outside, "other_2M_h1", 0, {"trial_number": 0, "value": 0.1})
    (src / "etc").symlink_to(outside, target_is_directory=True)
    (src / STUDY / "trials" / "trial_0009.json").symlink_to(
        outside / "other_2M_h1" / "trials" / "trial_0000.json"
    )
    (src / STUDY / "trials" / "trial_0001_again.json").symlink_to("trial_0001.json")
    out = tmp_path / "out"
    result = extract([src], out)
    assert not result.validation_failures
    manifest = _manifest(out)
    for name in (f"{src.as_posix()}/etc", f"{src.as_posix()}/{STUDY}/trials/trial_0009.json"):
        row = manifest[name]
        assert row["status"] == "ignored"
        assert "outside the source: not followed" in row["reason"]
        assert str(outside.resolve()) in row["reason"]
    assert not any("other_2M_h1" in name for name in manifest)
    # a link inside the source is followed as before
    assert f"{src.as_posix()}/{STUDY}/trials/trial_0001_again.json" in manifest
    followed = tmp_path / "followed"
    from hpo_analysis.model import Settings

    extract([src], followed, settings=Settings(follow_symlinks=True))
    assert any("other_2M_h1" in name for name in _manifest(followed))


def test_a_link_to_a_blocking_pseudo_file_does_not_hang(tmp_path: Path) -> None:
    """FIFOs and pseudo files such as /proc/kmsg: opening or reading them would block."""
    src = _tree(tmp_path)
    fifo_dir = tmp_path / "pipes"
    fifo_dir.mkdir()
    os.mkfifo(fifo_dir / "kmsg")
    (src / STUDY / "trials" / "trial_0007.json").symlink_to(fifo_dir / "kmsg")
    os.mkfifo(src / STUDY / "trials" / "trial_0008.json")  # a FIFO inside the source
    kmsg = Path("/proc/kmsg")  # a regular file to stat whose read blocks until the kernel logs
    if kmsg.exists():
        (src / STUDY / "trials" / "trial_0006.json").symlink_to(kmsg)
    result = run_cli("extract", str(src), "--out", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    manifest = _manifest(tmp_path / "out")
    assert "outside the source" in manifest[f"{src}/{STUDY}/trials/trial_0007.json"]["reason"]
    assert "FIFO" in manifest[f"{src}/{STUDY}/trials/trial_0008.json"]["reason"]
    if kmsg.exists():
        assert "outside the source" in manifest[f"{src}/{STUDY}/trials/trial_0006.json"]["reason"]


@pytest.mark.parametrize("encoding", ["utf-16", "utf-32", "utf-16-le", "utf-32-be"])
def test_utf16_and_utf32_are_named_and_read_with_a_bom(tmp_path: Path, encoding: str) -> None:
    src = _tree(tmp_path)
    body = '{"trial_number": 5, "value": 0.25, "params": {"optimizer": "adamé"}}'
    write_trial(src, STUDY, 5, body.encode(encoding))
    out = tmp_path / "out"
    result = extract([src], out)
    assert not result.validation_failures
    manifest = _manifest(out)[f"{src.as_posix()}/{STUDY}/trials/trial_0005.json"]
    if encoding in ("utf-16", "utf-32"):  # Python writes a BOM for these
        assert manifest["status"] == "ok", manifest
        row = next(r for r in read_csv(out / "hpo_summary.csv") if r["trial_num"] == "5")
        assert row["objective"] == "0.25"
    else:
        assert manifest["status"] == "rejected"
        assert f"{encoding.upper()} without a byte order mark" in manifest["reason"]


def test_a_byte_order_mark_is_named_in_the_error(tmp_path: Path) -> None:
    src = _tree(tmp_path)
    write_trial(src, STUDY, 5, b"\xff\xfe{}")  # a UTF-16-LE BOM, then bytes that are no JSON
    out = tmp_path / "out"
    assert not extract([src], out).validation_failures
    row = _manifest(out)[f"{src.as_posix()}/{STUDY}/trials/trial_0005.json"]
    assert row["status"] == "rejected"
    assert row["reason"].startswith("read as UTF-16-LE (byte order mark): invalid JSON")
