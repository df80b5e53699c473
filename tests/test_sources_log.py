"""Trials recovered from Optuna's log lines: compared with the storage the same run wrote,
grouped into studies, never evaluated, and marked as recovered."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hpo_analysis import extract
from hpo_analysis.model import Problem, Settings
from hpo_analysis.normalize import normalize_trial
from hpo_analysis.sources import optuna_log
from hpo_analysis.sources.optuna_log import LiteralError, safe_literal

from .conftest import read_csv, run_cli

optuna = pytest.importorskip("optuna")


def _storage_trials(db: Path) -> dict[str, list[Any]]:
    storage = optuna.storages.RDBStorage(f"sqlite:///{db}")
    try:
        return {
            s.study_name: storage.get_all_trials(s._study_id) for s in storage.get_all_studies()
        }
    finally:
        storage.engine.dispose()


def test_log_matches_the_storage_of_the_same_run(optuna_runs: Path) -> None:
    result = optuna_log.read(optuna_runs / "rich.log", "rich.log", Settings())
    assert [p.code for p in result.problems] == ["recovered_from_log"]
    assert result.problems[0].severity == "note"
    logged = {(t.study, t.trial_num): t for t in result.trials}
    stored = _storage_trials(optuna_runs / "rich.db")
    # "gone" was deleted from the storage after the run, but its lines are in the log;
    # "copied" was added with add_trials, which logs nothing
    assert {s for s, _ in logged} == {"search", "auc_max", "multi", "gone"}
    compared = 0
    for study, trials in stored.items():
        for trial in trials:
            got = logged.get((study, trial.number))
            if trial.state.name in ("RUNNING", "WAITING") or study == "copied":
                assert got is None  # never logged
                continue
            assert got is not None and got.state == trial.state.name
            if trial.state.name == "COMPLETE":
                assert got.objective == trial.values[0]  # repr round-trips exactly
                expected = normalize_trial(
                    {"number": trial.number, "params": trial.params}, study=study, source_file=""
                )
                assert not isinstance(expected, Problem)
                assert got.architecture == expected.architecture
                assert got.training == expected.training
                assert got.extra_params == expected.extra_params
                completed = trial.datetime_complete
                assert (
                    abs((_parse(got.results["datetime_complete"]) - completed).total_seconds()) < 1
                )
            if trial.state.name == "FAIL":
                assert got.objective is None and got.extra_params["x"] == trial.params["x"]
            if trial.state.name == "PRUNED":
                assert got.objective is None and got.extra_params == {}
            assert got.curve == () and got.results["datetime_start"] is None
            compared += 1
    assert compared == 25
    multi = [t for t in result.trials if t.study == "multi"]
    stored_multi = {t.number: t.values for t in stored["multi"]}
    assert all(list(t.objective_values.values()) == stored_multi[t.trial_num] for t in multi)
    assert all(list(t.objective_values) == ["accuracy", "latency"] for t in multi)


def _parse(text: str) -> Any:
    from datetime import datetime

    return datetime.fromisoformat(text)


def test_directions_inferred_from_best_lines(optuna_runs: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    extract([optuna_runs / "rich.log"], out, Settings())
    rows = read_csv(out / "hpo_summary.csv")
    why = {r["study"]: (r["direction"], r["direction_source"]) for r in rows}
    assert why["auc_max"] == ("maximize", "log: best-trial lines")
    assert why["search"] == ("minimize", "log: best-trial lines")
    assert why["multi"] == ("maximize", "objective name 'accuracy'")  # no best lines
    assert {r["source_format"] for r in rows} == {"Optuna log (recovered)"}
    readme = (out / "README.md").read_text(encoding="utf-8")
    assert "| auc_max |  |  | maximize | log: best-trial lines |" in readme
    manifest = read_csv(out / "manifest.csv")
    assert manifest[0]["format"] == "Optuna log (recovered)" and manifest[0]["status"] == "ok"


def test_study_name_without_creation_lines(optuna_runs: Path, tmp_path: Path) -> None:
    lines = (optuna_runs / "contract.log").read_text(encoding="utf-8").splitlines(keepends=True)
    headless = tmp_path / "resumed.log"
    headless.write_text("".join(x for x in lines if "A new study created" not in x))
    default = optuna_log.read(headless, "resumed.log", Settings())
    assert {t.study for t in default.trials} == {"resumed"}
    named = optuna_log.read(headless, "resumed.log", Settings(studies=("sweep_2B_h1",)))
    assert {t.study for t in named.trials} == {"sweep_2B_h1"}
    assert {t.factors["budget"] for t in named.trials} == {"2B"}
    globbed = optuna_log.read(headless, "resumed.log", Settings(studies=("res*",)))
    assert {t.study for t in globbed.trials} == {"resumed"}


def test_hand_written_variants(tmp_path: Path) -> None:
    log = tmp_path / "old.log"
    log.write_text(
        "epoch 1 loss 0.5\n"
        "[I 2021-03-01 10:00:00,000] A new study created in memory with name: legacy\n"
        "[I 2021-03-01 10:00:01,500] Trial 0 finished with value: 0.5 and parameters: "
        "{'lr': np.float64(0.01), 'opt': 'adam'}. Best is trial 0 with value: 0.5.\n"
        "2021-03-01 10:00:02 INFO Trial 1 finished with value: {'val_auc': 0.7} and "
        "parameters: {'lr': 0.1, 'note': 'a } and parameters: {'}.\n"
        "[W 2021-03-01 10:00:03,000] Trial 2 failed because of the following error: "
        "ValueError('x')\n"
        "[W 2021-03-01 10:00:04,000] Trial 3 failed, because the objective function returned "
        "nan.\n"
        "[I 2021-03-01 10:00:05,000] Trial 4 finished with value: inf and parameters: "
        "{'lr': __import__('os').system('touch PWNED')}.\n"
        "[I 2021-03-01 10:00:06,000] Trial 0 finished with value: 0.9 and parameters: {}.\n"
    )
    assert optuna_log.sniff(log)
    result = optuna_log.read(log, "old.log", Settings())
    trials = {t.trial_num: t for t in result.trials}
    assert trials[0].training["lr"] == 0.01 and trials[0].objective == 0.5
    assert trials[0].results["datetime_complete"] == "2021-03-01T10:00:01.500000"
    assert trials[1].objective == 0.7 and trials[1].objective_name == "val_auc"
    assert trials[1].extra_params["note"] == "a } and parameters: {"
    assert trials[1].results["datetime_complete"] is None  # no Optuna time stamp
    assert (trials[2].state, trials[3].state) == ("FAIL", "FAIL")
    assert math.isinf(trials[4].objective) and trials[4].training["lr"] is None
    assert not (tmp_path / "PWNED").exists() and not Path("PWNED").exists()
    codes = [p.code for p in result.problems]
    assert "log_unparsed_literal" in codes and "log_duplicate_trial" in codes
    assert {t.study for t in result.trials} == {"legacy"}


def test_logs_without_trials(tmp_path: Path) -> None:
    chatter = tmp_path / "train.log"
    chatter.write_text("epoch 1 loss 0.5\nepoch 2 loss 0.4\n")
    assert not optuna_log.sniff(chatter)
    empty_study = tmp_path / "started.log"
    empty_study.write_text("[I 2024-01-01 00:00:00,000] A new study created in RDB with name: s\n")
    out = tmp_path / "out"
    run = run_cli("extract", str(tmp_path), "--out", str(out))
    assert run.returncode == 0, run.stderr
    manifest = {Path(m["path"]).name: m for m in read_csv(out / "manifest.csv")}
    assert manifest["train.log"]["status"] == "ignored"
    assert manifest["started.log"]["status"] == "rejected"
    assert "no Optuna trial lines found" in manifest["started.log"]["reason"]


@pytest.mark.parametrize(
    "text",
    [
        "__import__('os')",
        "open('f').read()",
        "(lambda: 1)()",
        "{**x}",
        "[x for x in y]",
        "a.b",
        "1 + 2",
        "np.float64(0.1).hex()",
        "{'a': 1",
    ],
)
def test_safe_literal_refuses_code(text: str) -> None:
    with pytest.raises(LiteralError):
        safe_literal(text)


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(max_size=8),
)


@given(st.dictionaries(st.text(max_size=6), st.one_of(scalars, st.lists(scalars, max_size=3))))
def test_safe_literal_reads_what_python_prints(params: dict[str, Any]) -> None:
    assert safe_literal(repr(params)) == params


line_parts = st.sampled_from(
    [
        "Trial 3 finished with value: ",
        "Trial 4 finished with values: [",
        " and parameters: {",
        "}. Best is trial 1 with value: ",
        "Trial 2 pruned. ",
        "Trial 5 failed with parameters: {'a': ",
        " because of the following error: ",
        "Trial 5 failed with value ",
        "A new study created in memory with name: ",
        "[I 2024-01-01 00:00:00,000] ",
        "nan",
        "-inf",
        "0.5",
        "'x'",
        "}",
        "]",
        "\n",
    ]
)


@settings(max_examples=80, deadline=None)
@given(st.lists(st.one_of(line_parts, st.text(max_size=6)), max_size=30))
def test_any_log_text_gives_trials_or_problems_never_an_exception(
    tmp_path_factory: pytest.TempPathFactory, parts: list[str]
) -> None:
    path = tmp_path_factory.mktemp("log") / "run.log"
    path.write_text("".join(parts), encoding="utf-8", errors="surrogatepass")
    result = optuna_log.read(path, "run.log", Settings())
    assert result.problems  # at least the note, or why nothing was found
