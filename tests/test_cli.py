"""Small hand-written trees through the command line, with hand-computed expectations."""

from __future__ import annotations

import json
from pathlib import Path

from .conftest import curve, read_csv, run_cli, strict_json, write_trial

STUDY = "sweep_20M_h5"
# for tests of the tables, which the report is not (its own tests are in test_report.py)
EXTRACT = ("extract", "--no-report")


def _trial(
    number: int, value: float | None, losses: list[float], epochs: int = 5, **extra: object
) -> dict[str, object]:
    body: dict[str, object] = {
        "trial_number": number,
        "value": value,
        "state": "COMPLETE",
        "params": {
            "arch_idx": number,
            "learning_rate": 1e-3,
            "epochs": epochs,
            "weight_decay": 0.01,
            "warmup_steps": 100,
            "dropout": 0.1,
        },
        "architecture": {
            "d_model": 64,
            "n_layers": 2,
            "n_heads": 4,
            "d_ff": 256,
            "param_count": 1000,
        },
        "user_attrs": {"learning_curve": curve(*losses), "val_accuracy": 0.6},
    }
    body.update(extra)
    return body


def _hand_tree(root: Path) -> Path:
    src = root / "hpo"
    write_trial(src, STUDY, 0, _trial(0, 0.5, [0.7, 0.6, 0.5, 0.55, 0.56]))  # full 5 epochs
    write_trial(src, STUDY, 1, _trial(1, 0.4, [0.6, 0.4, 0.45]))  # stopped after 3 of 5
    write_trial(src, STUDY, 2, _trial(2, 0.5, [0.5, 0.52]))  # tie with trial 0
    diverged = _trial(
        3, 100.0, [0.7, 0.6], architecture={"d_model": 64, "n_layers": 4, "n_heads": 4, "d_ff": 256}
    )
    diverged["user_attrs"]["learning_curve"].append(  # type: ignore[index]
        {"epoch": 2, "train_loss": float("nan"), "val_loss": float("inf"), "val_auc": 0.5}
    )
    write_trial(src, STUDY, 3, diverged)
    pruned = _trial(4, 0.3, [0.5, 0.3], state="PRUNED")
    write_trial(src, STUDY, 4, pruned)
    return src


def test_hand_tree_definitions(tmp_path: Path) -> None:
    src = _hand_tree(tmp_path)
    out = tmp_path / "out"
    run = run_cli(*EXTRACT, str(src), "--out", str(out))
    assert run.returncode == 0, run.stderr
    rows = {int(r["trial_num"]): r for r in read_csv(out / "hpo_summary.csv")}
    assert [rows[n]["rank_in_study"] for n in range(5)] == ["2", "1", "2", "4", ""]
    assert [rows[n]["is_best_in_study"] for n in range(5)] == [
        "false",
        "true",
        "false",
        "false",
        "false",
    ]
    assert [rows[n]["early_stopped"] for n in range(5)] == [
        "false",
        "true",
        "true",
        "false",
        "false",
    ]
    assert [rows[n]["stop_reason"] for n in range(5)] == [
        "completed",
        "early_stopped",
        "early_stopped",
        "diverged",
        "pruned",
    ]
    assert rows[0]["best_epoch"] == "2" and rows[0]["best_val_loss"] == "0.5"
    assert rows[3]["best_epoch"] == "1" and rows[3]["epochs_trained"] == "3"
    assert rows[3]["train_loss"] == ""  # last epoch's train_loss was NaN
    assert rows[0]["budget"] == "20M" and rows[0]["horizon"] == "h5"
    diverged = read_csv(out / "diverged_analysis.csv")
    assert len(diverged) == 1
    d = diverged[0]
    assert (d["diverge_epoch"], d["diverge_kind"], d["last_good_loss"]) == ("2", "nan_loss", "0.6")
    # trial 3 is d_model 64, n_layers 4, n_heads 4: all others have n_layers 2 (distance 1.0);
    # ties break on the better rank -> trial 1
    assert d["similar_successful_trial"] == f"{STUDY}/1"
    assert d["similar_distance"] == "1.0"
    assert d["similar_val_loss"] == "0.4"
    full = strict_json(out / "hpo_full.json")
    t3 = next(t for t in full["trials"] if t["trial_num"] == 3)
    assert t3["learning_curve"][2]["train_loss"] is None
    assert {"epoch": 2, "metric": "val_loss", "value": "Infinity"} in t3[
        "learning_curve_non_finite"
    ]


def test_bad_files_are_reported_not_fatal(tmp_path: Path) -> None:
    src = _hand_tree(tmp_path)
    write_trial(src, STUDY, 7, '{"trial_number": 7, "value": 0.5, "params": {"lr": ')
    write_trial(src, STUDY, 8, b"")
    write_trial(src, STUDY, 9, b"{\xff}")
    write_trial(src, STUDY, 10, "[1, 2]")
    (src / STUDY / "trials" / ".DS_Store").write_bytes(b"\0\0")
    out = tmp_path / "out"
    run = run_cli("extract", str(src), "--out", str(out))
    assert run.returncode == 0, run.stderr
    assert "trial_0007.json: invalid JSON at line 1, column" in run.stderr
    assert "was it still being written?" in run.stderr
    assert "trial_0008.json: empty file" in run.stderr
    assert "trial_0009.json: not valid UTF-8" in run.stderr
    assert "trial_0010.json: expected a JSON object (one trial), found an array" in run.stderr
    assert "Traceback" not in run.stderr
    manifest = read_csv(out / "manifest.csv")
    status = {Path(m["path"]).name: m["status"] for m in manifest}
    assert status["trial_0007.json"] == status["trial_0008.json"] == "rejected"
    assert status[".DS_Store"] == "ignored"
    assert len(manifest) == 10
    summary = read_csv(out / "hpo_summary.csv")
    assert len(summary) == sum(1 for m in manifest if m["status"] in ("ok", "warning")) == 5
    last = run.stdout.strip().splitlines()[-1]
    assert "5 trials in 1 studies from 10 files" in last and "4 rejected" in last
    strict = run_cli("extract", str(src), "--out", str(out), "--strict")
    assert strict.returncode == 1


def test_duplicate_trial_numbers_keep_the_first(tmp_path: Path) -> None:
    src = tmp_path / "hpo"
    write_trial(src, STUDY, 1, _trial(1, 0.4, [0.5]), name="trial_0001.json")
    write_trial(src, STUDY, 1, _trial(1, 0.9, [0.9]), name="trial_0001_copy.json")
    out = tmp_path / "out"
    run = run_cli(*EXTRACT, str(src), "--out", str(out))
    assert run.returncode == 0
    rows = read_csv(out / "hpo_summary.csv")
    assert [r["objective"] for r in rows] == ["0.4"]
    manifest = {Path(m["path"]).name: m for m in read_csv(out / "manifest.csv")}
    assert manifest["trial_0001_copy.json"]["status"] == "rejected"
    assert "trial_0001.json" in manifest["trial_0001_copy.json"]["reason"]


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    missing = run_cli("extract", str(tmp_path / "nope"), "--out", str(tmp_path / "o"))
    assert missing.returncode == 2 and "no such file or directory" in missing.stderr
    assert run_cli("extract", "--diverge-threshold", "x").returncode == 2
    assert run_cli("extract", "--study-pattern", "(unclosed").returncode == 2
    precious = tmp_path / "mine"
    precious.mkdir()
    (precious / "thesis.tex").write_text("do not delete")
    src = _hand_tree(tmp_path)
    refused = run_cli("extract", str(src), "--out", str(precious))
    assert refused.returncode == 2 and "refusing to replace" in refused.stderr
    assert (precious / "thesis.tex").read_text() == "do not delete"


def test_study_pattern_groups_become_columns(tmp_path: Path) -> None:
    src = tmp_path / "hpo"
    write_trial(src, "run-7B-seed3", 0, _trial(0, 0.4, [0.5]))
    out = tmp_path / "out"
    run = run_cli(
        *EXTRACT,
        str(src),
        "--out",
        str(out),
        "--study-pattern",
        r"run-(?P<budget>\d+B)-seed(?P<seed>\d+)",
    )
    assert run.returncode == 0, run.stderr
    row = read_csv(out / "hpo_summary.csv")[0]
    assert (row["budget"], row["horizon"], row["seed"]) == ("7B", "", "3")


def test_spreadsheet_formulas_are_neutralised(tmp_path: Path) -> None:
    src = tmp_path / "hpo"
    study = '=HYPERLINK("https:\\\\x","y")'  # no "/" possible in a directory name
    write_trial(
        src, study, 0, _trial(0, -1.5, [0.5], params={"optimizer": "@SUM(A1)", "epochs": 1})
    )
    out = tmp_path / "out"
    assert run_cli(*EXTRACT, str(src), "--out", str(out)).returncode == 0
    row = read_csv(out / "hpo_summary.csv")[0]
    assert row["study"] == "'" + study
    assert row["param_optimizer"] == "'@SUM(A1)"
    assert row["objective"] == "-1.5"  # numbers untouched
    full = json.loads((out / "hpo_full.json").read_text())
    assert full["trials"][0]["study"] == study  # JSON keeps the real name


def test_quiet_and_summary_line(tmp_path: Path) -> None:
    src = _hand_tree(tmp_path)
    run = run_cli("extract", str(src), "--out", str(tmp_path / "o"), "--quiet")
    assert run.returncode == 0
    assert run.stderr == ""
    assert run.stdout.strip().splitlines()[-1].startswith("5 trials in 1 studies from 5 files")
