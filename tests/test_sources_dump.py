"""Study dumps and their best_params.json: both shapes, the real-world quirks (forced-extreme
trials, ``TrialState.COMPLETE``, ``d_ff_ratio``, lower-case budgets, a metadata file copied
from another study), direction hints, and the shared real samples when present."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hpo_analysis import extract
from hpo_analysis.model import Settings
from hpo_analysis.sources import registry, study_dump, study_meta, trial_json

from .conftest import read_csv, run_cli, samples_dir, strict_json, write_trial


def _trial(number: int, value: float, **params: Any) -> dict[str, Any]:
    return {
        "number": number,
        "value": value,
        "state": "TrialState.COMPLETE",
        "params": {
            "d_model": 96,
            "n_layers": 4,
            "n_heads": 8,
            "d_ff_ratio": 2,
            "learning_rate": 1e-4,
            "dropout": 0.3,
            "weight_decay": 1e-3,
            **params,
        },
    }


def _forced(number: int, value: float, d_model: int, n_layers: int) -> dict[str, Any]:
    return {
        "number": number,
        "value": value,
        "state": "TrialState.COMPLETE",
        "params": {},
        "user_attrs": {
            "duration_sec": 12.5,
            "epochs_run": 40,
            "extreme_type": "min_d_model",
            "forced_d_ff_ratio": 4,
            "forced_d_model": d_model,
            "forced_dropout": 0.1,
            "forced_extreme": True,
            "forced_learning_rate": 5e-5,
            "forced_n_heads": 4,
            "forced_n_layers": n_layers,
            "forced_weight_decay": 1e-4,
            "val_auc": value,
        },
    }


def _study(root: Path, name: str, meta: dict[str, Any] | None) -> Path:
    directory = root / name
    directory.mkdir(parents=True)
    trials = [
        _forced(0, 0.70, 64, 6),
        _forced(1, 0.71, 192, 2),
        _trial(2, 0.74, d_model=128),
        _trial(3, 0.72, n_layers=8),
        _trial(4, 0.73, d_ff_ratio=4),
    ]
    (directory / "all_trials.json").write_text(json.dumps(trials, indent=2))
    if meta is not None:
        (directory / "best_params.json").write_text(json.dumps(meta, indent=2))
    with open(directory / "trial_metrics.csv", "w", newline="") as handle:
        csv.writer(handle).writerows(
            [["trial", "auc"], *[[t["number"], t["value"]] for t in trials]]
        )
    return directory


def test_forced_trials_ratios_states_and_best_params(tmp_path: Path) -> None:
    src = tmp_path / "phase"
    _study(
        src,
        "hpo_20m_1_a9",
        {
            "experiment": "hpo_20m_1_a9",
            "budget": "20M",
            "horizon": 1,
            "n_trials": 5,
            "best_trial": 2,
            "best_value": 0.74,
        },
    )
    out = tmp_path / "out"
    run = run_cli("extract", str(src), "--out", str(out))
    assert run.returncode == 0, run.stderr
    rows = {int(r["trial_num"]): r for r in read_csv(out / "hpo_summary.csv")}
    assert [rows[0][k] for k in ("d_model", "n_layers", "n_heads", "d_ff", "lr", "dropout")] == [
        "64",
        "6",
        "4",
        "256",
        "5e-05",
        "0.1",
    ]
    assert rows[0]["param_d_ff_ratio"] == "4" and rows[2]["param_d_ff_ratio"] == "2"
    assert rows[2]["d_ff"] == "256" and rows[4]["d_ff"] == "384"  # d_model * d_ff_ratio
    assert rows[0]["epochs_trained"] == "40" and rows[0]["duration_sec"] == "12.5"
    assert {r["state"] for r in rows.values()} == {"COMPLETE"}
    assert (rows[0]["budget"], rows[0]["horizon"]) == ("20M", "h1")  # horizon from best_params
    assert {r["direction"] for r in rows.values()} == {"maximize"}
    assert rows[0]["direction_source"] == (
        "best_params.json: best_value is the highest of the dump's values"
    )
    assert [rows[n]["rank_in_study"] for n in range(5)] == ["5", "4", "1", "3", "2"]
    assert rows[0]["val_loss"] == ""  # the objective is an AUC, not a loss
    assert {r["source_format"] for r in rows.values()} == {"study dump"}
    manifest = {Path(m["path"]).name: m for m in read_csv(out / "manifest.csv")}
    assert manifest["all_trials.json"]["n_trials"] == "5"
    assert (manifest["best_params.json"]["status"], manifest["best_params.json"]["n_trials"]) == (
        "ok",
        "0",
    )
    assert manifest["trial_metrics.csv"]["status"] == "ignored"
    assert "flattened by the runner" in manifest["trial_metrics.csv"]["reason"]
    full = strict_json(out / "hpo_full.json")
    extra = full["trials"][0]["extra"]["user_attrs"]
    assert extra["forced_extreme"] is True and "epochs_run" not in extra


def test_best_params_disagreements_are_warnings(tmp_path: Path) -> None:
    src = tmp_path / "phase"
    _study(
        src,
        "hpo_200m_1_a9",
        {
            "experiment": "hpo_2m_1_a1",
            "budget": "2M",
            "horizon": 3,
            "n_trials": 50,
            "best_trial": 3,
            "best_value": 0.74,
        },
    )
    out = tmp_path / "out"
    run = run_cli("extract", str(src), "--out", str(out))
    assert run.returncode == 0, run.stderr
    meta = next(m for m in read_csv(out / "manifest.csv") if m["path"].endswith("best_params.json"))
    assert meta["status"] == "warning" and meta["n_trials"] == "0"
    for expected in (
        "names experiment 'hpo_2m_1_a1' but belongs to study 'hpo_200m_1_a9'",
        "budget '2M' contradicts the study name's '200M'",
        "n_trials 50 but all_trials.json holds 5 trials",
        "best_value 0.74 but trial 3 has 0.72",
    ):
        assert expected in meta["reason"], expected
    rows = read_csv(out / "hpo_summary.csv")
    assert {(r["budget"], r["horizon"]) for r in rows} == {("200M", "h3")}  # the name wins


def test_directions_from_the_dump_itself(tmp_path: Path) -> None:
    explicit = tmp_path / "a" / "run_all_trials.json"
    explicit.parent.mkdir(parents=True)
    trials = [_trial(0, 0.3), _trial(1, 0.2)]
    explicit.write_text(json.dumps({"study_name": "x", "direction": "MINIMIZE", "trials": trials}))
    named = tmp_path / "b" / "auc_sweep.json"  # claimed by content, not by name
    named.parent.mkdir()
    named.write_text(json.dumps([_forced(0, 0.6, 64, 2), _forced(1, 0.7, 64, 4)]))
    assert registry.claim(named) == "study_dump"
    out = tmp_path / "out"
    extract([tmp_path / "a", tmp_path / "b"], out, Settings())
    rows = {r["study"]: r for r in read_csv(out / "hpo_summary.csv") if r["trial_num"] == "1"}
    assert (rows["run"]["direction"], rows["run"]["direction_source"]) == ("minimize", "study dump")
    assert rows["run"]["rank_in_study"] == "1"
    assert rows["auc_sweep"]["objective_name"] == "val_auc"  # mirrored user attribute
    assert rows["auc_sweep"]["direction_source"] == "objective name 'val_auc'"
    assert rows["auc_sweep"]["rank_in_study"] == "1"
    forced = extract([tmp_path / "b"], tmp_path / "o2", Settings(directions=(("*", "minimize"),)))
    assert forced.n_trials == 2
    assert read_csv(tmp_path / "o2" / "hpo_summary.csv")[0]["rank_in_study"] == "1"


def test_unusable_dumps_are_rejected_with_a_reason(tmp_path: Path) -> None:
    root = tmp_path / "s"
    root.mkdir()
    (root / "all_trials.json").write_text('{"study": "x"}')
    (root / "x_all_trials.json").write_text('[{"number": 0, "value": 0.1')
    out = tmp_path / "out"
    run = run_cli("extract", str(root), "--out", str(out))
    assert run.returncode == 0, run.stderr
    manifest = {Path(m["path"]).name: m for m in read_csv(out / "manifest.csv")}
    assert manifest["all_trials.json"]["status"] == "rejected"
    assert 'an object with a "trials" list' in manifest["all_trials.json"]["reason"]
    assert "was it still being written?" in manifest["x_all_trials.json"]["reason"]
    assert "Traceback" not in run.stderr


def test_no_file_is_claimed_by_two_readers(tmp_path: Path) -> None:
    """Name sniffs exclude each other; content sniffs only see what no name sniff claimed."""
    write_trial(tmp_path, "s", 1, {"trial_number": 1, "value": 0.5})
    _study(tmp_path, "d", {"best_trial": 2})
    (tmp_path / "d" / "trials.json").write_text(json.dumps([_trial(9, 0.1)]))
    (tmp_path / "run_all_trials.json").write_text(json.dumps({"trials": [_trial(0, 0.1)]}))
    (tmp_path / "loose.json").write_text(json.dumps([_trial(0, 0.1)]))
    (tmp_path / "config.json").write_text(json.dumps({"lr": 0.1, "trials": 3}))
    name_sniffs = [study_dump.sniff_name, trial_json.sniff, study_meta.sniff]
    expected = {
        "trial_0001.json": "trial_json",
        "all_trials.json": "study_dump",
        "trials.json": "study_dump",  # not the per-trial reader, though it starts with "trial"
        "run_all_trials.json": "study_dump",
        "best_params.json": "study_meta",
        "loose.json": "study_dump",  # by content
        "config.json": None,
        "trial_metrics.csv": None,
    }
    for path in sorted(p for p in tmp_path.rglob("*") if p.is_file()):
        assert sum(sniff(path) for sniff in name_sniffs) <= 1, path
        assert registry.claim(path) == expected[path.name], path


def test_every_file_seen_is_in_the_manifest_once(optuna_runs: Path, tmp_path: Path) -> None:
    """A tree holding every format at once: one manifest row per file, n_trials adding up."""
    tree = tmp_path / "tree"
    _study(tree, "dumped_2M_h1", {"best_trial": 2, "best_value": 0.74})
    write_trial(tree, "pertrial_20M_h3", 0, {"trial_number": 0, "value": 0.4})
    for name in ("contract.db", "contract_journal.log", "contract.log"):
        (tree / "optuna").mkdir(exist_ok=True)
        (tree / "optuna" / name).write_bytes((optuna_runs / name).read_bytes())
    (tree / "optuna" / "readme.txt").write_text("nothing to see")
    (tree / ".DS_Store").write_bytes(b"\0")
    files = sorted(p for p in tree.rglob("*") if p.is_file())
    out = tmp_path / "out"
    result = extract([tree], out, Settings())
    assert result.validation_failures == []
    manifest = read_csv(out / "manifest.csv")
    assert sorted(m["path"] for m in manifest) == sorted(p.as_posix() for p in files)
    counted = sum(int(m["n_trials"]) for m in manifest if m["status"] in ("ok", "warning"))
    # dump 5 + per-trial 1 + the Optuna study 8 (counted once: db, journal and log repeat it)
    assert counted == len(read_csv(out / "hpo_summary.csv")) == 5 + 1 + 8
    formats = {Path(m["path"]).name: (m["format"], m["status"], m["n_merged"]) for m in manifest}
    # the three Optuna copies describe the same study: they agree, so the storage's records
    # lead and the journal's and the log's are merged into them (ok, not duplicates)
    assert formats["contract.db"] == ("Optuna storage", "ok", "0")
    assert formats["contract_journal.log"] == ("Optuna journal", "ok", "8")
    assert formats["contract.log"] == ("Optuna log (recovered)", "ok", "8")
    sources = {
        r["sources"] for r in read_csv(out / "hpo_summary.csv") if r["study"] == "contract_20M_h3"
    }
    assert {s.count("; ") for s in sources} == {2}


def test_real_samples(tmp_path: Path) -> None:
    samples = samples_dir()
    if samples is None:
        pytest.skip("the shared real samples are not present")
    out = tmp_path / "out"
    run = run_cli("extract", str(samples), "--out", str(out))
    assert run.returncode == 0, run.stderr
    rows = read_csv(out / "hpo_summary.csv")
    assert len(rows) == 600 and len({r["study"] for r in rows}) == 12
    assert {r["direction"] for r in rows} == {"maximize"}
    for column in ("d_model", "n_layers", "n_heads", "d_ff", "lr", "dropout", "weight_decay"):
        assert all(r[column] != "" for r in rows), column
    budgets = {}
    for row in rows:
        budgets[row["budget"]] = budgets.get(row["budget"], 0) + 1
    assert budgets == {"2M": 200, "20M": 200, "200M": 200}
    assert {r["horizon"] for r in rows} == {"h1"}
    manifest = read_csv(out / "manifest.csv")
    for meta_row in (m for m in manifest if m["path"].endswith("best_params.json")):
        meta = json.loads(Path(meta_row["path"]).read_text())
        study = Path(meta_row["path"]).parent.name
        best = [r for r in rows if r["study"] == study and r["rank_in_study"] == "1"]
        assert meta["best_trial"] in [int(r["trial_num"]) for r in best], study  # ties share 1
        assert {float(r["objective"]) for r in best} == {meta["best_value"]}, study
        assert meta_row["n_trials"] == "0"
    readme = (out / "README.md").read_text(encoding="utf-8")
    why = "best_params.json: best_value is the highest of the dump's values"
    assert f"| hpo_2m_h1 | 2M | h1 | maximize | {why} | 50 | 0 |" in readme
    assert 'aggfunc="max"' in readme
    # forced-extreme trials against the authors' own flattened table
    for table in (Path(m["path"]) for m in manifest if m["path"].endswith("trial_metrics.csv")):
        study = table.parent.name
        by_number = {int(r["trial_num"]): r for r in rows if r["study"] == study}
        for line in read_csv(table):
            row = by_number[int(line["trial"])]
            assert int(row["d_model"]) == int(line["d_model"])
            assert int(row["n_layers"]) == int(line["n_layers"])
            assert float(row["lr"]) == float(line["learning_rate"])
            assert int(row["d_ff"]) == int(line["d_model"]) * int(line["d_ff_ratio"])


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
trial_keys = st.sampled_from(
    [
        "number",
        "value",
        "values",
        "state",
        "params",
        "user_attrs",
        "intermediate_values",
        "datetime_start",
        "trial_number",
    ]
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.dictionaries(trial_keys, json_values, max_size=6), max_size=4) | json_values)
def test_any_json_dump_gives_trials_or_problems_never_an_exception(
    tmp_path: Path, body: Any
) -> None:
    path = tmp_path / "h" / "all_trials.json"
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(body))
    result = study_dump.read(path, "all_trials.json", Settings())
    assert result.trials or result.problems or body == []
    meta = tmp_path / "h" / "best_params.json"
    meta.write_text(json.dumps(body if isinstance(body, dict) else {"best_trial": body}))
    study_meta.read(meta, "best_params.json", Settings())
