"""The direct journal reader equals Optuna's own reading, on journals written by Optuna.

Every trial of every study is compared field by field with ``optuna.load_study(...).trials``:
number, state, values, params (value and type), user attributes, intermediate values and
datetimes — for whole journals, for journals cut at many byte offsets (a study still being
written), and for studies with running and waiting trials.
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hpo_analysis import extract
from hpo_analysis.model import Settings
from hpo_analysis.sources import optuna_journal
from hpo_analysis.sources.optuna_journal import replay_journal

from .conftest import REPO, read_csv, strict_json

optuna = pytest.importorskip("optuna")


def _local(text: str | None) -> datetime | None:
    """Optuna's reading of a journal datetime: local time, naive."""
    if text is None:
        return None
    return datetime.fromisoformat(text).astimezone().replace(tzinfo=None)


def _same_number(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a):
        return math.isnan(b)
    return type(a) is type(b) and a == b


def _same_values(a: list[Any] | None, b: list[Any] | None) -> bool:
    if a is None or b is None:
        return a is b
    return len(a) == len(b) and all(_same_number(x, y) for x, y in zip(a, b, strict=True))


def assert_equal_to_optuna(path: Path) -> int:
    """Compare the direct reading of ``path`` with Optuna's; return the trials compared."""
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    ours = replay_journal(path)
    copy = path.with_name(path.name + ".optuna-copy")
    shutil.copyfile(path, copy)  # Optuna's backend may create lock files next to it
    storage = JournalStorage(JournalFileBackend(str(copy)))
    theirs = {s.study_name: s for s in storage.get_all_studies()}
    assert sorted(theirs) == sorted(s.name for s in ours.studies.values())
    compared = 0
    for study in ours.studies.values():
        frozen_study = theirs[study.name]
        assert [d.value for d in frozen_study.directions] == study.directions
        assert frozen_study.user_attrs == study.user_attrs
        assert frozen_study.system_attrs == study.system_attrs
        expected = storage.get_all_trials(frozen_study._study_id)
        got = ours.study_trials(study)
        assert len(got) == len(expected), study.name
        for a, b in zip(expected, got, strict=True):
            where = f"{study.name} trial {a.number}"
            assert a.number == b.number, where
            assert a.state.name == b.state_name, where
            assert _same_values(a.values, b.values), where
            assert list(a.params) == list(b.params), where
            for name, value in a.params.items():
                assert _same_number(value, b.params[name]) or value == b.params[name], where
                assert type(value) is type(b.params[name]), where
            assert a.user_attrs == b.user_attrs, where
            assert a.system_attrs == b.system_attrs, where
            assert a.intermediate_values.keys() == b.intermediate_values.keys(), where
            for step, value in a.intermediate_values.items():
                assert _same_number(value, b.intermediate_values[step]), where
            assert a.datetime_start == _local(b.datetime_start), where
            assert a.datetime_complete == _local(b.datetime_complete), where
            compared += 1
    copy.unlink()
    return compared


@pytest.fixture(scope="module")
def odd_journal(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A journal with the less common operations: every parameter kind, NaN reports,
    attributes, a re-suggested parameter, a still-running and a waiting trial."""

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    path = tmp_path_factory.mktemp("journal") / "odd.log"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("os.fsync", lambda fd: None)  # durability is not under test; speed is
        _write_odd_journal(path)
    return path


def _write_odd_journal(path: Path) -> None:
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    storage = JournalStorage(JournalFileBackend(str(path)))
    study = optuna.create_study(study_name="odd", storage=storage, direction="maximize")
    study.set_user_attr("owner", {"team": "lab", "ids": [1, 2]})

    def objective(trial: optuna.Trial) -> float:
        c = trial.suggest_categorical("choice", [None, True, 1.5, "s", 2])
        n = trial.suggest_int("n", 1, 64, log=True)
        q = trial.suggest_float("q", 0.0, 1.0, step=0.25)
        trial.suggest_float("lr", 1e-5, 1e-1, log=True)
        trial.set_user_attr("nested", {"c": str(c), "list": [n, q]})
        trial.storage.set_trial_system_attr(trial._trial_id, "sys", n)  # no public API in 5.x
        trial.report(float("nan") if n % 2 else q, 0)
        trial.report(q / 2, 5)
        return q + n / 100

    for i in range(8):
        study.enqueue_trial({"choice": [None, True, 1.5, "s", 2][i % 5], "n": 1 + i * 7})
    study.optimize(objective, n_trials=8)

    def incompatible(trial: optuna.Trial) -> float:
        # "q" was a float: Optuna writes this operation, then refuses it on replay
        return float(trial.suggest_int("q", 0, 3))

    study.optimize(incompatible, n_trials=1, catch=(ValueError,))
    running = study.ask()
    running.suggest_int("n", 1, 64, log=True)
    running.report(0.1, 0)
    study.enqueue_trial({"n": 3})


def test_equal_to_optuna_on_real_journals(optuna_runs: Path, odd_journal: Path) -> None:
    assert assert_equal_to_optuna(optuna_runs / "rich_journal.log") == 30
    assert assert_equal_to_optuna(optuna_runs / "contract_journal.log") == 8
    assert assert_equal_to_optuna(odd_journal) == 11
    states = [t.state_name for t in replay_journal(odd_journal).trials]
    assert states[-3:] == ["FAIL", "RUNNING", "WAITING"]
    assert "q" not in replay_journal(odd_journal).trials[-3].params


def test_equal_to_optuna_at_every_cut(optuna_runs: Path, tmp_path: Path) -> None:
    """A journal cut anywhere (a study still being written) reads like Optuna reads it."""
    data = (optuna_runs / "rich_journal.log").read_bytes()
    ends = [i + 1 for i, byte in enumerate(data) if byte == ord("\n")]
    cuts = sorted({0, *ends[::9], *(e - 17 for e in ends[4::11]), len(data) - 1})
    cut_file = tmp_path / "cut.log"
    unfinished = 0
    for cut in cuts:
        cut_file.write_bytes(data[:cut])
        assert_equal_to_optuna(cut_file)
        problems = replay_journal(cut_file).problems
        if cut not in ends and cut > 0:
            unfinished += 1
            assert [p.code for p in problems] == ["journal_unfinished"], cut
            assert problems[0].severity == "note"
        else:
            assert problems == [], cut
    assert len(cuts) > 30 and unfinished > 10


def test_invalid_line_in_the_middle_keeps_what_came_before(
    optuna_runs: Path, tmp_path: Path
) -> None:
    lines = (optuna_runs / "contract_journal.log").read_bytes().splitlines(keepends=True)
    broken = tmp_path / "broken.log"
    broken.write_bytes(b"".join(lines[:20]) + b'{"op_code": 4, "study_id"\n' + b"".join(lines[20:]))
    before = tmp_path / "before.log"
    before.write_bytes(b"".join(lines[:20]))
    replay = replay_journal(broken)
    assert [p.code for p in replay.problems] == ["journal_invalid_line"]
    assert "line 21" in replay.problems[0].message
    assert replay.n_operations == 20
    kept = replay.study_trials(next(iter(replay.studies.values())))
    expected = replay_journal(before).study_trials(
        next(iter(replay_journal(before).studies.values()))
    )
    assert [(t.number, t.state, t.values, t.params) for t in kept] == [
        (t.number, t.state, t.values, t.params) for t in expected
    ]
    assert replay.sha256 == hashlib.sha256(broken.read_bytes()).hexdigest()


def test_fingerprint_and_sniff(optuna_runs: Path, tmp_path: Path) -> None:
    path = optuna_runs / "rich_journal.log"
    replay = replay_journal(path)
    assert replay.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert replay.size_bytes == path.stat().st_size
    assert optuna_journal.sniff(path)
    assert not optuna_journal.sniff(optuna_runs / "rich.log")
    not_journal = tmp_path / "x.log"
    not_journal.write_text('{"op": 1}\n')
    assert not optuna_journal.sniff(not_journal)


def test_journal_extract_curves_directions_and_objectives(
    optuna_runs: Path, tmp_path: Path
) -> None:
    before = hashlib.sha256((optuna_runs / "rich_journal.log").read_bytes()).hexdigest()
    out = tmp_path / "out"
    result = extract([optuna_runs / "rich_journal.log"], out, Settings())
    assert result.validation_failures == []
    assert hashlib.sha256((optuna_runs / "rich_journal.log").read_bytes()).hexdigest() == before
    rows = read_csv(out / "hpo_summary.csv")
    assert {r["study"] for r in rows} == {"search", "auc_max", "multi", "copied"}  # not "gone"
    by = {(r["study"], int(r["trial_num"])): r for r in rows}
    assert {r["direction"] for r in rows if r["study"] == "auc_max"} == {"maximize"}
    assert {r["direction_source"] for r in rows} == {"optuna study"}
    best = max((r for r in rows if r["study"] == "auc_max"), key=lambda r: float(r["objective"]))
    assert best["rank_in_study"] == "1"
    assert by[("auc_max", 0)]["val_loss"] == ""  # an unnamed maximized objective is no loss
    assert by[("search", 14)]["state"] == "RUNNING" and by[("search", 15)]["state"] == "WAITING"
    assert by[("search", 0)]["d_model"] == "32" and by[("search", 0)]["n_layers"] == "1"
    # the multi-objective study: one column per metric, ranked by the first (accuracy, max)
    multi = [r for r in rows if r["study"] == "multi"]
    assert all(r["objective"] == r["objective_accuracy"] for r in multi)
    assert max(multi, key=lambda r: float(r["objective"]))["rank_in_study"] == "1"
    assert {r["objective_name"] for r in multi} == {"accuracy"}
    full = strict_json(out / "hpo_full.json")
    trial = next(t for t in full["trials"] if t["study"] == "search" and t["trial_num"] == 0)
    assert [p["epoch"] for p in trial["learning_curve"]] == [0, 1, 2, 3]
    assert all(set(p) == {"epoch", "intermediate_value"} for p in trial["learning_curve"])
    own_curve = next(t for t in full["trials"] if t["study"] == "search" and t["trial_num"] == 1)
    assert "val_loss" in own_curve["learning_curve"][0]  # a learning_curve attribute wins
    assert "intermediate_values" in own_curve["extra"]  # ... and the reports are kept
    multi_json = next(t for t in full["trials"] if t["study"] == "multi")
    assert set(multi_json["results"]) >= {"objective_accuracy", "objective_latency"}
    readme = (out / "README.md").read_text(encoding="utf-8")
    assert "`intermediate_value`" in readme and "`objective_accuracy`" in readme


def test_rank_by_and_study_selection(optuna_runs: Path, tmp_path: Path) -> None:
    journal = optuna_runs / "rich_journal.log"
    out = tmp_path / "latency"
    extract([journal], out, Settings(rank_by="latency", studies=("mul*",)))
    rows = read_csv(out / "hpo_summary.csv")
    assert {r["study"] for r in rows} == {"multi"}
    assert all(r["objective"] == r["objective_latency"] for r in rows)
    assert {r["direction"] for r in rows} == {"minimize"}
    assert min(rows, key=lambda r: float(r["objective"]))["rank_in_study"] == "1"
    manifest = read_csv(out / "manifest.csv")
    assert "not selected by --study: auc_max, copied, search" in manifest[0]["reason"]
    assert manifest[0]["status"] == "ok" and manifest[0]["n_trials"] == "5"

    by_index = tmp_path / "index"
    extract([journal], by_index, Settings(rank_by="1", studies=("multi",)))
    assert read_csv(by_index / "hpo_summary.csv") == rows

    unknown = tmp_path / "unknown"
    extract([journal], unknown, Settings(rank_by="speed", studies=("multi",)))
    row = read_csv(unknown / "manifest.csv")[0]
    assert row["status"] == "warning" and "--rank-by 'speed' is not an objective" in row["reason"]
    assert {r["objective_name"] for r in read_csv(unknown / "hpo_summary.csv")} == {"accuracy"}

    nothing = tmp_path / "nothing"
    result = extract([journal], nothing, Settings(studies=("no_such_*",)))
    assert result.n_trials == 0 and result.n_ignored == 1
    assert read_csv(nothing / "manifest.csv")[0]["status"] == "ignored"


def test_benchmark_script_runs(tmp_path: Path) -> None:
    """benchmarks/bench_journal.py on a small journal: both readers count the same trials."""
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "bench_journal.py"), "--trials", "60"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "journal: 60 trials" in proc.stdout and "ratio:" in proc.stdout


def test_journal_written_by_hand_matches_documented_format(tmp_path: Path) -> None:
    """Keys as Optuna writes them; an unknown op code is skipped with a warning."""
    ops = [
        {"op_code": 0, "worker_id": "w", "study_name": "s", "directions": [2]},
        {"op_code": 4, "worker_id": "w", "study_id": 0, "datetime_start": "2024-01-01T00:00:00"},
        {"op_code": 99, "worker_id": "w"},
        {
            "op_code": 6,
            "worker_id": "w",
            "trial_id": 0,
            "state": 1,
            "values": [0.5],
            "datetime_complete": "2024-01-01T00:00:01",
        },
    ]
    path = tmp_path / "j.jsonl"
    path.write_text("".join(json.dumps(op) + "\n" for op in ops))
    replay = replay_journal(path)
    assert [(t.number, t.state_name, t.values) for t in replay.trials] == [(0, "COMPLETE", [0.5])]
    assert [p.code for p in replay.problems] == ["journal_skipped_op"]


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_corrupted_journals_give_problems_never_an_exception(
    optuna_runs: Path, tmp_path_factory: pytest.TempPathFactory, data: st.DataObject
) -> None:
    original = (optuna_runs / "contract_journal.log").read_bytes()
    position = data.draw(st.integers(0, len(original) - 1))
    junk = data.draw(st.binary(min_size=1, max_size=12))
    corrupted = original[:position] + junk + original[position + len(junk) :]
    path = tmp_path_factory.mktemp("corrupt") / "j.log"
    path.write_bytes(corrupted)
    result = optuna_journal.read(path, "j.log", Settings())
    assert result.sha256 == hashlib.sha256(corrupted).hexdigest()
    # junk inside the study-creation line may rename the study, but never splits its trials
    assert len({t.study for t in result.trials}) <= 1
