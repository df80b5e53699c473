"""Readers of other tools' output, on examples written by the tools themselves
(tests/fixtures/, made by scripts/make_foreign_fixtures.py): Ray Tune, KerasTuner, MLflow
(SQLite and file store), scikit-learn's cv_results_, and a W&B runs export in its documented
layout.

Each expectation is computed here from the tool's own files with the standard library (the
lines of result.json, the rows of the SQLite store, …), never copied from our outputs. One
contract runs over every format, as tests/test_sources_contract.py does for the Optuna forms:
every file accounted for, every trial with its params, objective, state and curve, the
divergence analysis and findings written, the same bytes on a second run, inputs untouched.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import re
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from hpo_analysis import extract
from hpo_analysis.model import Settings
from hpo_analysis.sources import claim

from .conftest import read_csv, run_cli

FIXTURES = Path(__file__).parent / "fixtures"
RAY = FIXTURES / "ray" / "asha_width_lr"
KERAS = FIXTURES / "keras_tuner" / "kt_random_units"
MLFLOW_DB = FIXTURES / "mlflow" / "mlflow_sqlite" / "mlflow.db"
MLFLOW_FILES = FIXTURES / "mlflow" / "mlflow_files"
SKLEARN = FIXTURES / "sklearn" / "sklearn_svc_grid" / "cv_results.csv"
WANDB = next((FIXTURES / "wandb").glob("wandb_export_*.csv"))

# kind -> (the source given to extract, the source_format of its trials)
SOURCES: dict[str, tuple[Path, str]] = {
    "Ray Tune": (FIXTURES / "ray", "Ray Tune experiment"),
    "KerasTuner": (FIXTURES / "keras_tuner", "KerasTuner project"),
    "MLflow SQLite": (MLFLOW_DB.parent, "MLflow tracking store"),
    "MLflow files": (MLFLOW_FILES, "MLflow tracking store"),
    "scikit-learn": (SKLEARN.parent, "runs table"),
    "W&B export": (WANDB.parent, "runs table"),
}


def _tree_digest(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _run(source: Path, out: Path, settings: Settings | None = None) -> list[dict[str, str]]:
    result = extract([source], out, settings or Settings())
    assert result.validation_failures == []
    return read_csv(out / "hpo_summary.csv")


def _ray_trials() -> list[dict[str, Any]]:
    """Each trial directory as Ray wrote it: params, result lines, error file."""
    trials = []
    for directory in sorted(p for p in RAY.iterdir() if (p / "params.json").is_file()):
        lines = [
            json.loads(line)
            for line in (directory / "result.json").read_text().splitlines()
            if line.strip()
        ]
        trials.append(
            {
                "number": int(directory.name.split("_")[2]),
                "params": json.loads((directory / "params.json").read_text()),
                "results": lines,
                "error": (directory / "error.txt").is_file(),
            }
        )
    return trials


def _expected_trials(kind: str) -> int:
    if kind == "Ray Tune":
        return len(_ray_trials())
    if kind == "KerasTuner":
        return len(list(KERAS.glob("trial_*/trial.json")))
    if kind.startswith("MLflow"):
        return len(_mlflow_children())
    with open(SKLEARN if kind == "scikit-learn" else WANDB, newline="") as handle:
        return sum(1 for _ in csv.DictReader(handle))


def _mlflow_children() -> list[dict[str, Any]]:
    """The child runs of the sweep, straight from MLflow's SQLite tables."""
    with sqlite3.connect(f"file:{MLFLOW_DB}?mode=ro", uri=True) as db:
        rows = db.execute(
            "SELECT r.run_uuid, r.name, r.status, r.start_time, p.name FROM runs r "
            "JOIN tags t ON t.run_uuid = r.run_uuid AND t.key = 'mlflow.parentRunId' "
            "JOIN runs p ON p.run_uuid = t.value ORDER BY r.start_time"
        ).fetchall()
        children = []
        for run_id, name, status, _, parent_name in rows:
            params = dict(db.execute("SELECT key, value FROM params WHERE run_uuid=?", (run_id,)))
            last = db.execute(
                "SELECT value FROM metrics WHERE run_uuid=? AND key='val_loss' "
                "ORDER BY step DESC LIMIT 1",
                (run_id,),
            ).fetchone()
            steps = db.execute(
                "SELECT COUNT(DISTINCT step) FROM metrics WHERE run_uuid=?", (run_id,)
            ).fetchone()[0]
            children.append(
                {
                    "name": name,
                    "status": status,
                    "study": parent_name,
                    "params": params,
                    "val_loss": last[0] if last else None,
                    "steps": steps,
                }
            )
    return children


@pytest.mark.parametrize("kind", list(SOURCES))
def test_contract_every_format(kind: str, tmp_path: Path) -> None:
    source, source_format = SOURCES[kind]
    before = _tree_digest(source)
    rows = _run(source, tmp_path / "out")
    out = tmp_path / "out"
    # every trial the tool wrote, each from this reader, with an objective or a reason
    assert len(rows) == _expected_trials(kind) > 0
    assert {r["source_format"] for r in rows} == {source_format}
    assert all(r["state"] in ("COMPLETE", "PRUNED", "FAIL", "RUNNING") for r in rows)
    assert any(r["rank_in_study"] == "1" for r in rows)
    assert all(r["objective_name"] not in ("", "value") for r in rows)
    complete = [r for r in rows if r["state"] == "COMPLETE"]
    assert complete and all(r["objective"] for r in complete)
    assert all(any(k.startswith("param_") and r[k] for k in r) or r["lr"] for r in rows)
    # every file seen is in the manifest; the trials of the manifest are the rows
    manifest = read_csv(out / "manifest.csv")
    empty_dirs = [p for p in source.rglob("*") if p.is_dir() and not any(p.iterdir())]
    assert len(manifest) == len(before) + len(empty_dirs)
    assert sum(int(m["n_trials"]) for m in manifest) == len(rows)
    assert not [m for m in manifest if m["status"] == "rejected"]
    # the analysis runs on it
    findings = json.loads((out / "findings.json").read_text())
    assert findings["n_trials"] == len(rows) and findings["findings"]
    diverged = read_csv(out / "diverged_analysis.csv")
    assert len(diverged) == sum(1 for r in rows if r["diverged"] == "true")
    # same input, same bytes; inputs never written
    first = (out / "hpo_summary.csv").read_bytes()
    extract([source], tmp_path / "again", Settings())
    assert (tmp_path / "again" / "hpo_summary.csv").read_bytes() == first
    assert _tree_digest(source) == before


def test_ray_tune_trials_follow_the_experiment_files(tmp_path: Path) -> None:
    rows = {int(r["trial_num"]): r for r in _run(FIXTURES / "ray", tmp_path / "out")}
    trials = _ray_trials()
    longest = max(len(t["results"]) for t in trials)
    assert 0 < longest and any(0 < len(t["results"]) < longest for t in trials)
    curves = pq.read_table(tmp_path / "out" / "curves.parquet").to_pylist()
    for trial in trials:
        row = rows[trial["number"]]
        assert row["study"] == "asha_width_lr"
        assert float(row["lr"]) == trial["params"]["lr"]
        assert row["param_model.width"] == str(trial["params"]["model"]["width"])
        assert row["param_optimizer"] == trial["params"]["optimizer"]
        results = trial["results"]
        if trial["error"]:
            assert (row["state"], row["stop_reason"]) == ("FAIL", "failed")
            continue
        want = "PRUNED" if len(results) < longest else "COMPLETE"
        assert row["state"] == want
        assert float(row["objective"]) == pytest.approx(results[-1]["val_loss"])  # scope last
        assert row["objective_name"] == "val_loss" and row["direction"] == "minimize"
        mine = [c for c in curves if c["trial_num"] == trial["number"]]
        assert [c["epoch"] for c in mine] == [r["training_iteration"] for r in results]
        assert [c["val_acc"] for c in mine] == pytest.approx([r["val_acc"] for r in results])
        blown = [r["training_iteration"] for r in results if r["val_loss"] >= 10]
        if blown:
            assert row["diverged"] == "true"
    diverged = read_csv(tmp_path / "out" / "diverged_analysis.csv")
    for row in diverged:
        trial = next(t for t in trials if t["number"] == int(row["trial_num"]))
        first_bad = next(r for r in trial["results"] if r["val_loss"] >= 10)
        assert int(row["diverge_epoch"]) == first_bad["training_iteration"]
    manifest = read_csv(tmp_path / "out" / "manifest.csv")
    claimed = [m for m in manifest if m["status"] != "ignored"]
    assert len(claimed) == 1 and claimed[0]["path"].endswith(".json")
    assert "experiment_state-" in claimed[0]["path"]
    pickles = [m for m in manifest if m["path"].endswith(".pkl")]
    assert pickles and all("not read" in m["reason"] for m in pickles)


def test_ray_tune_objective_and_direction_options(tmp_path: Path) -> None:
    rows = _run(
        FIXTURES / "ray",
        tmp_path / "out",
        Settings(objective="val_acc", directions=(("*", "maximize"),)),
    )
    assert {r["objective_name"] for r in rows} == {"val_acc"}
    # (a CSV cell starting with "-" is neutralised against formula injection)
    assert {r["direction_source"] for r in rows} == {"'--direction option"}
    best = max((r for r in rows if r["state"] == "COMPLETE"), key=lambda r: float(r["objective"]))
    assert best["rank_in_study"] == "1"


def test_ray_tune_without_experiment_state(tmp_path: Path) -> None:
    """Trial directories copied on their own: read from the first trial's result.json; an
    unfinished last line (a trial still writing) is left out with a note."""
    copy = tmp_path / "src" / "asha_width_lr"
    shutil.copytree(RAY, copy)
    for state in copy.glob("experiment_state-*.json"):
        state.unlink()
    longest = max(copy.glob("*/result.json"), key=lambda p: len(p.read_text().splitlines()))
    with open(longest, "a") as handle:
        handle.write('{"val_loss": 0.1, "training_iter')
    rows = _run(tmp_path / "src", tmp_path / "out", Settings(objective="val_loss"))
    assert len(rows) == len(_ray_trials())
    manifest = read_csv(tmp_path / "out" / "manifest.csv")
    read = [m for m in manifest if m["status"] in ("ok", "warning")]
    assert len(read) == 1 and read[0]["path"].endswith("result.json")
    assert "no experiment_state" in read[0]["reason"]
    assert "last line unfinished" in read[0]["reason"]
    assert all(m["reason"] for m in manifest if m["status"] == "ignored")


def test_keras_tuner_trials_claimed_by_content(tmp_path: Path) -> None:
    for trial_file in KERAS.glob("trial_*/trial.json"):
        assert claim(trial_file) == "keras_tuner"
    rows = {int(r["trial_num"]): r for r in _run(FIXTURES / "keras_tuner", tmp_path / "out")}
    for trial_file in KERAS.glob("trial_*/trial.json"):
        raw = json.loads(trial_file.read_text())
        row = rows[int(raw["trial_id"])]
        values = raw["hyperparameters"]["values"]
        assert float(row["objective"]) == pytest.approx(raw["score"])
        assert float(row["lr"]) == pytest.approx(values["learning_rate"])
        assert row["param_units"] == str(values["units"])
        # the boolean flag does not land in the numeric dropout column
        assert row["dropout"] == ""
        assert row["param_use_dropout"] == str(values["dropout"]).lower()
        assert row["state"] == {"COMPLETED": "COMPLETE"}.get(raw["status"], row["state"])
        observed = raw["metrics"]["metrics"][row["objective_name"]]
        assert row["direction"] == {"max": "maximize", "min": "minimize"}[observed["direction"]]
    assert {r["objective_name"] for r in rows.values()} == {"val_accuracy"}
    manifest = read_csv(tmp_path / "out" / "manifest.csv")
    trial_rows = [m for m in manifest if m["path"].endswith("trial.json")]
    assert all(m["status"] == "warning" for m in trial_rows)
    assert all("param_use_dropout" in m["reason"] for m in trial_rows)


def test_mlflow_stores_give_the_same_rows(tmp_path: Path) -> None:
    from_db = _run(MLFLOW_DB, tmp_path / "db")
    from_files = _run(MLFLOW_FILES, tmp_path / "files")
    children = _mlflow_children()
    assert len(from_db) == len(from_files) == len(children)
    states = {"FINISHED": "COMPLETE", "FAILED": "FAIL"}
    for row, child, other in zip(from_db, children, from_files, strict=True):
        assert row["study"] == child["study"] == "sweep_lr_width"  # the parent run
        assert row["state"] == states[child["status"]]
        assert float(row["lr"]) == float(child["params"]["lr"])
        assert row["param_optimizer"] == child["params"]["optimizer"]
        assert float(row["objective"]) == pytest.approx(child["val_loss"])
        assert int(row["epochs_trained"]) == child["steps"]
        for column in ("trial_num", "state", "objective", "lr", "d_model", "epochs_trained"):
            assert row[column] == other[column], column
    curves = pq.read_table(tmp_path / "db" / "curves.parquet")
    assert curves.num_rows == sum(c["steps"] for c in children)


def test_mlflow_sqlite_is_not_mistaken_for_optuna() -> None:
    assert claim(MLFLOW_DB) == "mlflow_store"


def test_sklearn_cv_results(tmp_path: Path) -> None:
    rows = _run(SKLEARN.parent, tmp_path / "out")
    with open(SKLEARN, newline="") as handle:
        table = list(csv.DictReader(handle))
    for row, raw in zip(rows, table, strict=True):
        assert float(row["objective"]) == float(raw["mean_test_score"])
        assert row["rank_in_study"] == raw["rank_test_score"]
        assert row["param_kernel"] == raw["param_kernel"]
        assert float(row["param_C"]) == float(raw["param_C"])
        assert row["direction"] == "maximize"
    manifest = read_csv(tmp_path / "out" / "manifest.csv")
    assert manifest[0]["status"] == "ok"
    # a rank that disagrees with the scores is reported
    bad = tmp_path / "bad" / "grid"
    bad.mkdir(parents=True)
    table[0]["rank_test_score"] = "99"
    with open(bad / "cv_results.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(table[0]))
        writer.writeheader()
        writer.writerows(table)
    extract([bad], tmp_path / "bad_out", Settings())
    reason = read_csv(tmp_path / "bad_out" / "manifest.csv")[0]["reason"]
    assert reason.endswith(
        "rank_test_score disagrees with mean_test_score: row 2: "
        f"rank_test_score 99, computed {rows[0]['rank_in_study']}"
    )


def test_wandb_export(tmp_path: Path) -> None:
    rows = _run(WANDB.parent, tmp_path / "out")
    with open(WANDB, newline="") as handle:
        table = list(csv.DictReader(handle))
    states = {"finished": "COMPLETE", "crashed": "FAIL", "running": "RUNNING"}
    table.sort(key=lambda r: r["Created"])  # numbered oldest first; the export is newest first
    for row, raw in zip(rows, table, strict=True):
        assert row["study"] == raw["Sweep"]
        assert row["state"] == states[raw["State"]]
        assert row["objective_name"] == "val_loss"
        value = float(raw["val_loss"])
        assert (row["objective"] == "") if math.isnan(value) else float(row["objective"]) == value
        assert float(row["lr"]) == float(raw["learning_rate"])
        assert int(row["batch_size"]) == int(raw["batch_size"])
        assert row["param_optimizer"] == raw["optimizer"]
        assert float(row["duration_sec"]) == float(raw["Runtime"])
    reason = read_csv(tmp_path / "out" / "manifest.csv")[0]["reason"]
    assert "params batch_size, dropout, learning_rate, optimizer" in reason
    # [table] params decides instead of the guess; --objective picks another metric
    rows = _run(
        WANDB.parent,
        tmp_path / "mapped",
        Settings(objective="val_acc", table_params=("learning_rate", "optimizer")),
    )
    assert {r["objective_name"] for r in rows} == {"val_acc"}
    assert {r["direction"] for r in rows} == {"maximize"}
    assert all(r["batch_size"] == "" for r in rows)


def test_table_mapped_in_the_project_config(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    runs.mkdir()
    with open(runs / "export.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["trial", "sweep", "lr", "width", "notes", "auc"])
        for index in range(6):
            writer.writerow(
                [
                    100 + index,
                    f"s{index % 2}",
                    10 ** -(index + 1),
                    16 * (index + 1),
                    "x",
                    0.5 + index / 20,
                ]
            )
    (runs / "other.csv").write_text("a,b\n1,2\n")
    (tmp_path / "hpo-analysis.toml").write_text(
        '[table]\nobjective = "auc"\nparams = ["lr", "width"]\nstudy = "sweep"\n'
    )
    result = run_cli("extract", "runs", "--out", "out", "--no-report", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    rows = read_csv(tmp_path / "out" / "hpo_summary.csv")
    assert [r["study"] for r in rows] == ["s0", "s0", "s0", "s1", "s1", "s1"]
    assert [r["trial_num"] for r in rows] == ["100", "102", "104", "101", "103", "105"]
    assert {r["direction"] for r in rows} == {"maximize"}  # from the name auc
    assert all("param_notes" not in r for r in rows)
    assert [r["is_best_in_study"] for r in rows if r["study"] == "s1"][-1] == "true"
    manifest = {m["path"]: m for m in read_csv(tmp_path / "out" / "manifest.csv")}
    assert manifest["runs/other.csv"]["status"] == "ignored"
    assert "runs table" in manifest["runs/other.csv"]["reason"]


def test_a_csv_that_is_not_a_runs_table_is_ignored(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "metrics.csv").write_text("epoch,loss\n0,1.0\n")
    result = extract([tmp_path / "src"], tmp_path / "out", Settings())
    assert result.n_trials == 0 and result.n_ignored == 1


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


@pytest.mark.parametrize(
    ("kind", "damage", "expected"),
    [
        ("ray", "experiment_state-*.json", "invalid JSON"),
        ("keras_tuner", "*/trial_3/trial.json", "invalid JSON"),
        ("sklearn", "*/cv_results.csv", "cannot read the table"),
        ("mlflow", "mlflow_sqlite/mlflow.db", "database disk image is malformed"),
    ],
)
def test_damaged_files_are_named_with_the_problem(
    kind: str, damage: str, expected: str, tmp_path: Path
) -> None:
    """A damaged file of each tool: a clear reason in the manifest, the rest still read."""
    source = tmp_path / kind
    shutil.copytree(FIXTURES / kind, source)
    (target,) = source.rglob(damage) if "/" not in damage else source.glob(damage)
    if kind == "sklearn":
        target.write_bytes(target.read_bytes() + b"\xff\xfe not text\n")
    elif kind == "mlflow":
        data = bytearray(target.read_bytes())
        data[100 : len(data)] = b"\x00" * (len(data) - 100)  # header kept, pages wiped
        target.write_bytes(bytes(data))
    else:
        _truncate(target)
    result = extract([source], tmp_path / "out", Settings())
    manifest = {m["path"]: m for m in read_csv(tmp_path / "out" / "manifest.csv")}
    row = manifest[target.as_posix()]
    assert expected in row["reason"], row
    assert row["status"] in ("rejected", "ignored")
    assert result.validation_failures == []
    if kind == "keras_tuner":  # the other trials of the project are still read
        assert result.n_trials == len(list(KERAS.glob("trial_*/trial.json"))) - 1


def test_every_format_in_one_tree(tmp_path: Path) -> None:
    """The new formats beside a per-trial JSON tree: each file goes to its own reader (or is
    listed as ignored), every trial of every format is read once, nothing else changes."""
    tree = tmp_path / "tree"
    for kind in ("ray", "keras_tuner", "sklearn", "wandb"):
        shutil.copytree(FIXTURES / kind, tree / kind)
    shutil.copytree(MLFLOW_DB.parent, tree / "mlflow_sqlite")
    per_trial = tree / "hpo_20M_h3" / "trials" / "trial_0000.json"
    per_trial.parent.mkdir(parents=True)
    per_trial.write_text(json.dumps({"trial_number": 0, "value": 0.5, "state": "COMPLETE"}))
    result = extract([tree], tmp_path / "out", Settings())
    assert result.validation_failures == []
    kinds = ("Ray Tune", "KerasTuner", "MLflow SQLite", "scikit-learn", "W&B export")
    assert result.n_trials == 1 + sum(_expected_trials(k) for k in kinds)
    manifest = {m["path"]: m for m in read_csv(tmp_path / "out" / "manifest.csv")}
    files = [p for p in tree.rglob("*") if p.is_file()]
    assert all(p.as_posix() in manifest for p in files)
    formats = {
        "ray_tune": "Ray Tune experiment",
        "keras_tuner": "KerasTuner project",
        "mlflow_store": "MLflow tracking store",
        "runs_table": "runs table",
        "trial_json": "per-trial JSON",
    }
    for path in files:
        reader = claim(path)
        row = manifest[path.as_posix()]
        if reader is None:
            assert row["status"] == "ignored" and row["reason"], row
        else:
            assert row["format"] == formats[reader], row
    assert claim(per_trial) == "trial_json"


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"objective": 3}, "[table] objective must be a column name"),
        ({"params": "lr"}, "[table] params must be a list of column names"),
        ({"params": ["lr"]}, "[table] needs objective = COLUMN"),
        ({"objective": "auc", "sheet": 1}, "[table] unknown key 'sheet'"),
    ],
)
def test_table_config_is_checked(table: dict[str, Any], message: str) -> None:
    from hpo_analysis.config import ConfigError, parse_config

    with pytest.raises(ConfigError, match=re.escape(message)):
        parse_config({"table": table}, "hpo-analysis.toml")
    parsed = parse_config({"table": {"objective": "auc", "params": ["lr"]}}, "x.toml")
    assert parsed.table == {"objective": "auc", "params": ["lr"]}


def test_objective_option_on_the_command_line(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = run_cli(
        "extract", str(FIXTURES / "ray"), "--out", str(out), "--objective", "val_acc", "--no-report"
    )
    assert result.returncode == 0, result.stderr
    rows = read_csv(out / "hpo_summary.csv")
    assert {r["objective_name"] for r in rows} == {"val_acc"}
    assert {r["direction"] for r in rows} == {"maximize"}  # from the name
