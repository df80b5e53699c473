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

from .conftest import curve, read_csv, run_cli, strict_json, write_trial

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


# --- values: surrogates, non-finite numbers, huge integers, deep nesting ----------------------


def _extract_ok(src: Path, out: Path) -> list[str]:
    """Extract, check every output agrees, and return the warnings printed."""
    lines: list[str] = []
    result = extract([src], out, report=lines.append)
    assert result.validation_failures == []
    assert validate_dir(out) == []
    strict_json(out / "hpo_full.json")  # strict JSON throughout
    return lines


def _summary(out: Path, trial: int) -> dict[str, str]:
    return next(r for r in read_csv(out / "hpo_summary.csv") if r["trial_num"] == str(trial))


def _full(out: Path, trial: int) -> dict[str, object]:
    trials = strict_json(out / "hpo_full.json")["trials"]
    found: dict[str, object] = next(t for t in trials if t["trial_num"] == trial)
    return found


def _raw_trial(src: Path, number: int, text: str) -> None:
    write_trial(src, STUDY, number, text.encode("ascii"))


def test_a_lone_surrogate_in_a_parameter_is_replaced_everywhere(tmp_path: Path) -> None:
    src = _tree(tmp_path)
    # what json.dumps writes for a string decoded from a non-UTF-8 file name
    _raw_trial(src, 3, '{"trial_number": 3, "value": 0.4, "params": {"optimizer": "ad\\udc80am"}}')
    out = tmp_path / "out"
    warnings = _extract_ok(src, out)
    assert any("trial_0003.json" in w and "params.optimizer" in w for w in warnings), warnings
    assert _summary(out, 3)["param_optimizer"] == "ad\ufffdam"
    import pandas as pd

    trials = pd.read_parquet(out / "trials.parquet")
    assert trials.loc[trials.trial_num == 3, "param_optimizer"].item() == "ad\ufffdam"


def test_lone_surrogates_in_keys_and_user_attrs(tmp_path: Path) -> None:
    src = _tree(tmp_path)
    _raw_trial(
        src,
        3,
        '{"trial_number": 3, "value": 0.4, "unk\\udc80": "x\\udc80", '
        '"user_attrs": {"k\\udc81": 1, "learning_curve": [{"epoch": 0, "val_loss": 0.5}]}}',
    )
    out = tmp_path / "out"
    warnings = _extract_ok(src, out)
    assert any("trial_0003.json" in w and "lone surrogate" in w for w in warnings), warnings
    assert len(strict_json(out / "hpo_full.json")["trials"]) == 4
    text = (out / "hpo_full.json").read_text(encoding="utf-8")
    assert "unk\ufffd" in text and "x\ufffd" in text


@pytest.mark.parametrize("token", ["Infinity", "-Infinity", "1e400", "NaN"])
def test_non_finite_hyperparameters_follow_one_rule(tmp_path: Path, token: str) -> None:
    src = _tree(tmp_path)
    _raw_trial(
        src,
        3,
        '{"trial_number": 3, "value": 0.4, "params": '
        f'{{"learning_rate": {token}, "dropout": {token}, "weight_decay": {token}}}}}',
    )
    out = tmp_path / "out"
    _extract_ok(src, out)
    row = _summary(out, 3)
    assert (row["lr"], row["dropout"], row["weight_decay"]) == ("", "", "")  # CSV: empty
    import pandas as pd

    stored = pd.read_parquet(out / "trials.parquet").set_index("trial_num").loc[3]
    assert not any(pd.notna(stored[c]) and abs(stored[c]) < float("inf") for c in ("lr", "dropout"))


def test_epochs_beyond_64_bits_are_left_out_of_every_output(tmp_path: Path) -> None:
    src = _tree(tmp_path)
    points = [{"epoch": 0, "val_loss": 0.7}, {"epoch": 1, "val_loss": 0.6}]
    import json

    body = {
        "trial_number": 3,
        "value": 0.4,
        "user_attrs": {"learning_curve": [*points, {"epoch": 2**63, "val_loss": 0.5}]},
    }
    write_trial(src, STUDY, 3, json.dumps(body))
    out = tmp_path / "out"
    warnings = _extract_ok(src, out)
    assert any("beyond 64-bit" in w and "left out of every output" in w for w in warnings)
    assert [p["epoch"] for p in _full(out, 3)["learning_curve"]] == [0, 1]  # type: ignore[index]


def test_journal_steps_beyond_64_bits(tmp_path: Path) -> None:
    import json

    ops = [
        {"op_code": 0, "worker_id": "w", "study_name": STUDY, "directions": [1]},
        {"op_code": 4, "worker_id": "w", "study_id": 0, "datetime_start": "2024-01-01T00:00:00"},
        {"op_code": 7, "worker_id": "w", "trial_id": 0, "step": 0, "intermediate_value": 0.7},
        {"op_code": 7, "worker_id": "w", "trial_id": 0, "step": 10**30, "intermediate_value": 0.6},
        {
            "op_code": 6,
            "worker_id": "w",
            "trial_id": 0,
            "state": 1,
            "values": [0.5],
            "datetime_complete": "2024-01-01T00:00:01",
        },
    ]
    journal = tmp_path / "journal.log"
    journal.write_text("".join(json.dumps(op) + "\n" for op in ops), encoding="utf-8")
    out = tmp_path / "out"
    warnings = _extract_ok(journal, out)
    assert any("beyond 64-bit" in w for w in warnings), warnings
    assert len(_full(out, 0)["learning_curve"]) == 1  # type: ignore[arg-type]


def test_deeply_nested_user_attrs_are_kept_as_text(tmp_path: Path) -> None:
    from hpo_analysis.jsonio import MAX_DEPTH

    src = _tree(tmp_path)
    deep = "[" * 300 + "1" + "]" * 300
    _raw_trial(src, 3, f'{{"trial_number": 3, "value": 0.4, "user_attrs": {{"deep": {deep}}}}}')
    out = tmp_path / "out"
    warnings = _extract_ok(src, out)
    assert any(f"nested more than {MAX_DEPTH} levels" in w for w in warnings), warnings
    assert _summary(out, 3)["objective"] == "0.4"
    assert deep[:50] in (out / "hpo_full.json").read_text(encoding="utf-8")
