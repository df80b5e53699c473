"""One contract for every reader: the same trials, whatever form they come in, give the same
rows. The trials are one real Optuna study (tests/optuna_runs.py) read from a SQLite storage,
a journal and the run's log, and written by the test as a per-trial JSON tree and as a study
dump in both shapes.

What a log cannot carry (the parameters and value of a pruned trial) is the only difference
allowed, and the manifest must say the log's trials were recovered.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hpo_analysis import extract
from hpo_analysis.model import Settings

from .conftest import read_csv
from .optuna_runs import CONTRACT_STUDY, CONTRACT_TRIALS

SHARED = (
    "study",
    "budget",
    "horizon",
    "trial_num",
    "d_model",
    "n_layers",
    "n_heads",
    "lr",
    "dropout",
    "param_optimizer",
    "state",
    "objective",
    "objective_kind",
    "objective_name",
    "val_loss",
    "rank_in_study",
    "is_best_in_study",
    "diverged",
    "direction",
    "stop_reason",
)
# what a log line of a pruned trial does not carry -> what the row says instead
NOT_IN_LOGS = {
    **dict.fromkeys(("d_model", "n_layers", "n_heads", "lr", "dropout", "param_optimizer"), ""),
    **{"objective": "", "val_loss": "", "objective_kind": "missing", "diverged": ""},
}


def _frozen_trials(db: Path) -> list[Any]:
    optuna = pytest.importorskip("optuna")
    storage = optuna.storages.RDBStorage(f"sqlite:///{db}")
    try:
        return optuna.load_study(study_name=CONTRACT_STUDY, storage=storage).trials
    finally:
        storage.engine.dispose()


def _dump_trial(trial: Any) -> dict[str, Any]:
    return {
        "number": trial.number,
        "value": trial.value if trial.values is not None else None,
        "state": str(trial.state),  # "TrialState.COMPLETE", as runners write it
        "params": trial.params,
        "user_attrs": trial.user_attrs,
        "intermediate_values": {str(k): v for k, v in trial.intermediate_values.items()},
        "datetime_start": trial.datetime_start.isoformat() if trial.datetime_start else None,
    }


def _per_trial_tree(runs: Path, root: Path) -> Path:
    for trial in _frozen_trials(runs / "contract.db"):
        body = _dump_trial(trial)
        body["trial_number"] = body.pop("number")
        body["state"] = trial.state.name
        del body["intermediate_values"]
        path = root / CONTRACT_STUDY / "trials" / f"trial_{trial.number:04d}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(body), encoding="utf-8")
    return root


def _dump_list(runs: Path, root: Path) -> Path:
    path = root / CONTRACT_STUDY / "all_trials.json"
    path.parent.mkdir(parents=True)
    trials = [_dump_trial(t) for t in _frozen_trials(runs / "contract.db")]
    path.write_text(json.dumps(trials, indent=2), encoding="utf-8")
    return root


def _dump_object(runs: Path, root: Path) -> Path:
    root.mkdir()
    trials = [_dump_trial(t) for t in _frozen_trials(runs / "contract.db")]
    body = {"study_name": "ignored: the file name wins", "trials": trials}
    (root / f"{CONTRACT_STUDY}_all_trials.json").write_text(json.dumps(body), encoding="utf-8")
    return root


# kind -> (how the source is made, the source_format its trials must carry)
SOURCES: dict[str, tuple[Callable[[Path, Path], Path | str], str]] = {
    "per-trial JSON": (_per_trial_tree, "per-trial JSON"),
    "study dump (list)": (_dump_list, "study dump"),
    "study dump (object)": (_dump_object, "study dump"),
    "SQLite file": (lambda runs, _: runs / "contract.db", "Optuna storage"),
    "SQLite URL": (lambda runs, _: f"sqlite:///{runs / 'contract.db'}", "Optuna storage"),
    "journal": (lambda runs, _: runs / "contract_journal.log", "Optuna journal"),
    "log": (lambda runs, _: runs / "contract.log", "Optuna log (recovered)"),
}


@pytest.fixture(scope="module")
def reference(optuna_runs: Path, tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, str]]:
    root = tmp_path_factory.mktemp("reference")
    out = root / "out"
    extract([_per_trial_tree(optuna_runs, root / "tree")], out, Settings())
    return read_csv(out / "hpo_summary.csv")


@pytest.mark.parametrize("kind", list(SOURCES))
def test_every_reader_gives_the_same_rows(
    kind: str, optuna_runs: Path, reference: list[dict[str, str]], tmp_path: Path
) -> None:
    make, source_format = SOURCES[kind]
    source = make(optuna_runs, tmp_path / "src")
    out = tmp_path / "out"
    result = extract([source], out, Settings())
    assert result.validation_failures == []
    rows = read_csv(out / "hpo_summary.csv")
    assert len(rows) == len(reference) == len(CONTRACT_TRIALS)
    for got, want in zip(rows, reference, strict=True):
        pruned_in_log = kind == "log" and want["state"] == "PRUNED"
        for column in SHARED:
            if pruned_in_log and column in NOT_IN_LOGS:
                assert got[column] == NOT_IN_LOGS[column], (column, got[column])
                continue
            assert got[column] == want[column], (kind, want["trial_num"], column)
        assert got["source_format"] == source_format
    manifest = [m for m in read_csv(out / "manifest.csv") if m["status"] in ("ok", "warning")]
    assert sum(int(m["n_trials"]) for m in manifest) == len(rows)
    if kind == "log":
        assert manifest[0]["format"] == "Optuna log (recovered)"
        assert "recovered from log lines" in manifest[0]["reason"]
        assert manifest[0]["status"] == "ok"  # a note, not a warning


def test_reference_rows_follow_the_study(reference: list[dict[str, str]]) -> None:
    """The reference itself, checked against how the study was run (no reader involved)."""
    by_number = {int(r["trial_num"]): r for r in reference}
    outcomes = [t[-1] for t in CONTRACT_TRIALS]
    states = {"ok": "COMPLETE", "diverge": "COMPLETE", "prune": "PRUNED", "fail": "FAIL"}
    states["nan"] = "FAIL"  # Optuna fails a trial whose objective is NaN
    assert [by_number[n]["state"] for n in range(len(outcomes))] == [states[o] for o in outcomes]
    ranked = sorted(
        (float(r["objective"]), n) for n, r in by_number.items() if r["state"] == "COMPLETE"
    )
    assert by_number[ranked[0][1]]["rank_in_study"] == "1"
    assert by_number[0]["rank_in_study"] == by_number[2]["rank_in_study"]  # the tie
    assert by_number[3]["diverged"] == "true" and by_number[3]["stop_reason"] == "diverged"
    assert {r["budget"] for r in reference} == {"20M"} and {r["horizon"] for r in reference} == {
        "h3"
    }
    assert all(r["direction"] == "minimize" for r in reference)
    assert not math.isnan(float(by_number[4]["objective"]))  # a pruned trial keeps its value
