"""Messy inputs: every case is accounted for in the manifest, explained, and never fatal."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from hpo_analysis import Settings, extract
from hpo_analysis.sources import base

from .conftest import curve, read_csv, run_cli, strict_json, write_trial

STUDY = "s_2M_h1"


def good(number: int, value: Any = 0.5, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "trial_number": number,
        "value": value,
        "state": "COMPLETE",
        "params": {"learning_rate": 0.001, "epochs": 3, "dropout": 0.1},
        "architecture": {"d_model": 64, "n_layers": 2, "n_heads": 4, "d_ff": 256},
        "user_attrs": {"learning_curve": curve(0.7, 0.6, 0.5)},
    }
    body.update(overrides)
    return body


def run(
    src: Path, out: Path, **settings: Any
) -> tuple[dict[str, dict[str, str]], dict[str, dict[str, str]], list[str]]:
    """Extract in-process; return summary rows and manifest rows keyed by file name, and the
    problem lines that would go to stderr."""
    lines: list[str] = []
    result = extract([src], out, Settings(**settings), report=lines.append)
    assert result.validation_failures == []
    summary = {Path(r["source_file"]).name: r for r in read_csv(out / "hpo_summary.csv")}
    manifest = {Path(m["path"].rstrip("/")).name: m for m in read_csv(out / "manifest.csv")}
    _check_accounting(out)
    return summary, manifest, lines


def _check_accounting(out: Path) -> None:
    manifest = read_csv(out / "manifest.csv")
    summary = read_csv(out / "hpo_summary.csv")
    assert len(summary) == sum(
        int(m["n_trials"] or 0) for m in manifest if m["status"] in ("ok", "warning")
    )
    for m in manifest:
        assert m["status"] in ("ok", "warning", "rejected", "ignored")
        if m["status"] != "ok":
            assert m["reason"], m


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"", "empty file (0 bytes)"),
        (
            b'{"trial_number": 1, "value": 0.5, "params": {"lr": ',
            "file ends inside an object — was it still being written?",
        ),
        (
            b'{"trial_number": 1, "user_attrs": {"learning_curve": [{"epoch": 0',
            "invalid JSON at line 1, column",
        ),
        (b'{"value": 0.5\xff}', "not valid UTF-8: byte 0xff at offset 13"),
        (b"[1, 2, 3]", "expected a JSON object (one trial), found an array"),
        (b"42", "expected a JSON object (one trial), found a number"),
        (b'{"a": 1} {"b": 2}', "extra data after the end of the JSON value"),
        (b"[" * 200_000, "nested too deeply"),
    ],
)
def test_unreadable_files_are_rejected_with_a_reason(
    tmp_path: Path, content: bytes, expected: str
) -> None:
    src = tmp_path / "hpo"
    write_trial(src, STUDY, 0, good(0))
    write_trial(src, STUDY, 1, content)
    summary, manifest, lines = run(src, tmp_path / "out")
    assert list(summary) == ["trial_0000.json"]
    assert manifest["trial_0001.json"]["status"] == "rejected"
    assert expected in manifest["trial_0001.json"]["reason"]
    assert any(
        line.endswith(manifest["trial_0001.json"]["reason"]) and "trial_0001.json: " in line
        for line in lines
    )


def test_non_finite_tokens_anywhere(tmp_path: Path) -> None:
    src = tmp_path / "hpo"
    write_trial(src, STUDY, 0, good(0, value=float("nan"), duration_seconds=float("inf")))
    write_trial(src, STUDY, 1, good(1, value=float("-inf")))
    write_trial(
        src,
        STUDY,
        2,
        good(2, value=float("inf"), user_attrs={"learning_curve": curve(0.7, float("-inf"))}),
    )
    summary, manifest, _ = run(src, tmp_path / "out")
    rows = [summary[f"trial_000{i}.json"] for i in range(3)]
    assert [r["objective_kind"] for r in rows] == ["nan", "-inf", "inf"]
    assert [r["diverged"] for r in rows] == ["true", "true", "true"]
    assert [r["rank_in_study"] for r in rows] == ["", "", ""]
    assert rows[0]["duration_sec"] == ""
    full = strict_json(tmp_path / "out" / "hpo_full.json")
    assert full["trials"][2]["learning_curve_non_finite"] == [
        {"epoch": 1, "metric": "val_loss", "value": "-Infinity"}
    ]


def test_missing_fields_are_tolerated(tmp_path: Path) -> None:
    src = tmp_path / "hpo"
    no_value = good(0)
    del no_value["value"]
    no_number = good(99)
    del no_number["trial_number"]
    no_arch = good(2)
    del no_arch["architecture"]
    no_curve = good(3, user_attrs={})
    for number, body in ((0, no_value), (1, no_number), (2, no_arch), (3, no_curve)):
        write_trial(src, STUDY, number, body)
    summary, manifest, _ = run(src, tmp_path / "out")
    assert manifest["trial_0000.json"]["status"] == "warning"
    assert "no objective value" in manifest["trial_0000.json"]["reason"]
    assert summary["trial_0000.json"]["objective_kind"] == "missing"
    assert summary["trial_0000.json"]["diverged"] == ""
    assert summary["trial_0000.json"]["rank_in_study"] == ""
    assert summary["trial_0000.json"]["val_loss"] == "0.5"  # last epoch of the curve
    assert summary["trial_0001.json"]["trial_num"] == "1"
    assert "using 1 from the file name" in manifest["trial_0001.json"]["reason"]
    assert summary["trial_0002.json"]["d_model"] == ""
    assert summary["trial_0003.json"]["epochs_trained"] == ""
    assert summary["trial_0003.json"]["early_stopped"] == ""
    assert summary["trial_0003.json"]["stop_reason"] == "unknown"


def test_strings_and_nulls_where_numbers_belong(tmp_path: Path) -> None:
    src = tmp_path / "hpo"
    write_trial(
        src,
        STUDY,
        0,
        good(0, value="0.25", params={"learning_rate": "0.001", "epochs": "3", "dropout": None}),
    )
    write_trial(src, STUDY, 1, good(1, value=None, params={"learning_rate": "fast"}))
    summary, manifest, _ = run(src, tmp_path / "out")
    row = summary["trial_0000.json"]
    assert (row["objective"], row["lr"], row["epochs_config"], row["dropout"]) == (
        "0.25",
        "0.001",
        "3",
        "",
    )
    assert "number written as a string" in manifest["trial_0000.json"]["reason"]
    assert summary["trial_0001.json"]["lr"] == ""
    assert "expected a number, found text 'fast'" in manifest["trial_0001.json"]["reason"]


@pytest.mark.parametrize(
    ("state", "canonical", "reason"),
    [
        ("PRUNED", "PRUNED", "pruned"),
        ("FAIL", "FAIL", "failed"),
        ("RUNNING", "RUNNING", "running"),
        ("WAITING", "WAITING", "running"),
        ("TrialState.COMPLETE", "COMPLETE", "completed"),
        ("TrialState.PRUNED", "PRUNED", "pruned"),
    ],
)
def test_states(tmp_path: Path, state: str, canonical: str, reason: str) -> None:
    src = tmp_path / "hpo"
    write_trial(src, STUDY, 0, good(0, value=0.9))
    write_trial(src, STUDY, 1, good(1, value=0.1, state=state))
    summary, _, _ = run(src, tmp_path / "out")
    row = summary["trial_0001.json"]
    assert (row["state"], row["stop_reason"]) == (canonical, reason)
    if canonical == "COMPLETE":
        assert row["rank_in_study"] == "1"
    else:
        assert row["rank_in_study"] == "" and summary["trial_0000.json"]["rank_in_study"] == "1"


def test_messy_learning_curves(tmp_path: Path) -> None:
    src = tmp_path / "hpo"
    unsorted = [
        {"epoch": 2, "val_loss": 0.4},
        {"epoch": 0, "val_loss": 0.6},
        {"epoch": 1, "val_loss": 0.5},
    ]
    duplicated = [
        {"epoch": 0, "val_loss": 0.6},
        {"epoch": 0, "val_loss": 0.1},
        {"epoch": 1, "val_loss": 0.5},
    ]
    missing_keys = [{"epoch": 0, "val_loss": 0.6}, {"epoch": 1}, {"val_loss": 0.55}, "junk"]
    for number, points in enumerate((unsorted, duplicated, missing_keys)):
        write_trial(src, STUDY, number, good(number, user_attrs={"learning_curve": points}))
    summary, manifest, _ = run(src, tmp_path / "out")
    assert "epochs out of order" in manifest["trial_0000.json"]["reason"]
    assert summary["trial_0000.json"]["best_epoch"] == "2"
    assert "duplicate epoch" in manifest["trial_0001.json"]["reason"]
    assert summary["trial_0001.json"]["best_val_loss"] == "0.5"  # the duplicate 0.1 is dropped
    assert "not objects" in manifest["trial_0002.json"]["reason"]
    assert summary["trial_0002.json"]["epochs_trained"] == "3"
    full = strict_json(tmp_path / "out" / "hpo_full.json")
    assert [p["epoch"] for p in full["trials"][0]["learning_curve"]] == [0, 1, 2]


def test_duplicate_trial_names_both_files(tmp_path: Path) -> None:
    src = tmp_path / "hpo"
    write_trial(src, STUDY, 3, good(3), name="trial_0003.json")
    write_trial(src, STUDY, 3, good(3, value=0.1), name="trial_0003_rerun.json")
    summary, manifest, _ = run(src, tmp_path / "out")
    assert list(summary) == ["trial_0003.json"]
    reason = manifest["trial_0003_rerun.json"]["reason"]
    assert manifest["trial_0003_rerun.json"]["status"] == "rejected"
    assert "trial_0003.json" in reason and "trial 3" in reason


def test_odd_directories_and_files(tmp_path: Path) -> None:
    src = tmp_path / "hpo"
    write_trial(src, STUDY, 0, good(0))
    (src / "empty_study").mkdir(parents=True)
    (src / "no_trials_dir").mkdir()
    (src / "no_trials_dir" / "notes.txt").write_text("x")
    (src / STUDY / "trials" / ".DS_Store").write_bytes(b"\0")
    (src / STUDY / "trials" / "trial_0005.json~").write_text("{}")
    (src / STUDY / "trials" / "trial_0006.json.tmp").write_text("{")
    (src / STUDY / "loop").symlink_to(src / STUDY)
    (src / STUDY / "dangling").symlink_to(src / "nowhere")
    summary, manifest, _ = run(src, tmp_path / "out")
    assert list(summary) == ["trial_0000.json"]
    assert manifest["empty_study"]["status"] == "ignored"
    assert manifest["notes.txt"]["status"] == "ignored"
    assert manifest[".DS_Store"]["status"] == "ignored"
    assert manifest["trial_0005.json~"]["status"] == "ignored"
    assert manifest["trial_0006.json.tmp"]["status"] == "ignored"
    assert "symlink loop" in manifest["loop"]["reason"]
    assert manifest["dangling"]["status"] == "rejected"
    assert "broken symlink" in manifest["dangling"]["reason"]


def test_unreadable_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = tmp_path / "hpo"
    write_trial(src, STUDY, 0, good(0))
    locked = write_trial(src, STUDY, 1, good(1))
    real_open = os.open  # readers open files by descriptor (see base.read_bytes_checked)

    def guarded_open(path: Any, *args: Any, **kwargs: Any) -> Any:
        if Path(path) == locked:
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(base.os, "open", guarded_open)
    summary, manifest, _ = run(src, tmp_path / "out")
    assert list(summary) == ["trial_0000.json"]
    assert manifest["trial_0001.json"]["reason"] == "cannot read: Permission denied"


def test_size_limit(tmp_path: Path) -> None:
    src = tmp_path / "hpo"
    write_trial(src, STUDY, 0, good(0))
    big = good(1, user_attrs={"learning_curve": curve(*([0.5] * 5000))})
    write_trial(src, STUDY, 1, big)
    summary, manifest, _ = run(src, tmp_path / "out", max_file_bytes=100_000)
    assert manifest["trial_0001.json"]["status"] == "rejected"
    assert "over the 0.0953674 MiB limit" in manifest["trial_0001.json"]["reason"]
    assert manifest["trial_0001.json"]["sha256"]  # still fingerprinted


def test_unknown_keys_are_kept_in_full_json(tmp_path: Path) -> None:
    src = tmp_path / "hpo"
    body = good(0, seed=1234, notes={"by": "me"})
    body["user_attrs"]["git_sha"] = "abc123"
    write_trial(src, STUDY, 0, body)
    run(src, tmp_path / "out")
    trial = strict_json(tmp_path / "out" / "hpo_full.json")["trials"][0]
    assert trial["extra"] == {
        "seed": 1234,
        "notes": {"by": "me"},
        "user_attrs": {"git_sha": "abc123"},
    }


def test_running_study_partial_file_then_rerun(tmp_path: Path) -> None:
    src = tmp_path / "hpo"
    write_trial(src, STUDY, 0, good(0))
    text = json.dumps(good(1), indent=2)
    partial = write_trial(src, STUDY, 1, text[: len(text) // 2])
    summary, manifest, _ = run(src, tmp_path / "out")
    assert manifest["trial_0001.json"]["status"] == "rejected"
    assert "was it still being written?" in manifest["trial_0001.json"]["reason"]
    partial.write_text(text)
    summary, manifest, _ = run(src, tmp_path / "out")
    assert sorted(summary) == ["trial_0000.json", "trial_0001.json"]


def test_every_prefix_of_a_trial_file_is_a_clean_rejection(tmp_path: Path) -> None:
    from hpo_analysis.sources import trial_json

    src = tmp_path / "hpo" / STUDY / "trials"
    src.mkdir(parents=True)
    data = json.dumps(
        good(7, user_attrs={"learning_curve": [{"epoch": 0, "val_loss": float("nan")}]})
    ).encode()
    path = src / "trial_0007.json"
    for end in range(len(data)):
        path.write_bytes(data[:end])
        result = trial_json.read(path, str(path), Settings())
        assert result.rejected and not result.trials, end
        assert len(result.problems) == 1 and result.problems[0].message
    path.write_bytes(data)
    assert trial_json.read(path, str(path), Settings()).trials


def test_disk_full_keeps_previous_outputs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import errno

    from hpo_analysis.write import outputs

    src = tmp_path / "hpo"
    write_trial(src, STUDY, 0, good(0))
    out = tmp_path / "out"
    run(src, out)
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    write_trial(src, STUDY, 1, good(1))

    def full_disk(*args: Any, **kwargs: Any) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(outputs, "write_manifest", full_disk)
    with pytest.raises(OSError):
        extract([src], out)
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before
    assert not [p for p in tmp_path.iterdir() if ".staging-" in p.name]


def test_strict_and_exit_codes(tmp_path: Path) -> None:
    src = tmp_path / "hpo"
    write_trial(src, STUDY, 0, good(0))
    write_trial(src, STUDY, 1, b"{")
    out = tmp_path / "out"
    relaxed = run_cli("extract", str(src), "--out", str(out))
    assert relaxed.returncode == 0
    assert (
        relaxed.stdout.strip()
        .splitlines()[-1]
        .startswith("1 trials in 1 studies from 2 files (0 diverged): 0 warnings, 1 rejected")
    )
    strict = run_cli("extract", str(src), "--out", str(out), "--strict")
    assert strict.returncode == 1
    assert (out / "manifest.csv").exists()  # written before failing, so the user sees why
    assert run_cli("extract", str(src), "--bogus").returncode == 2


def test_output_directory_inside_the_source_is_not_read(tmp_path: Path) -> None:
    src = tmp_path / "hpo"
    write_trial(src, STUDY, 0, good(0))
    out = src / "analysis"
    for _ in range(2):
        run_result = run_cli("extract", str(src), "--out", str(out))
        assert run_result.returncode == 0, run_result.stderr
    rows = read_csv(out / "hpo_summary.csv")
    assert len(rows) == 1
    manifest = read_csv(out / "manifest.csv")
    ours = [m for m in manifest if "/analysis/" in m["path"] or "/.analysis." in m["path"]]
    assert ours and all(m["status"] == "ignored" for m in ours)
    assert all("output directory" in m["reason"] for m in ours)
