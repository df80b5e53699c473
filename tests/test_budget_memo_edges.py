"""Edges of the per-budget answers reused from the last run (analyze/memo.py): values,
functions and frames whose digest must tell apart what a finding tells apart, sequences of
runs through the pipeline, and kept answer files that are damaged, planted or not files."""

from __future__ import annotations

import copy
import copyreg
import functools
import json
import math
import os
import pickle
import shutil
import struct
import threading
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hpo_analysis import analyze, extract
from hpo_analysis.analyze import (
    BudgetMemo,
    all_findings,
    best_architecture,
    divergence_by_depth,
    trial_frame,
)
from hpo_analysis.analyze import importance as importance_module
from hpo_analysis.analyze.frame import Budget, Frame, Tally, _scored, per_budget
from hpo_analysis.analyze.memo import _dump, _load, kept_budgets
from hpo_analysis.cache import (
    ANSWERS_FILE,
    CACHE_DIR,
    CACHE_FORMAT,
    FINDINGS_FILE,
    RUN_FILE,
    cached_answers,
    keep_answers,
)
from hpo_analysis.derive import assign_ranks
from hpo_analysis.example import generate_example
from hpo_analysis.jsonio import dumps_lossless

from .test_budget_memo import _encoded, _memo_runs

# --- helpers ----------------------------------------------------------------------------------


_run = _memo_runs


def _fresh(rows: list[dict[str, Any]]) -> bytes:
    return _encoded(all_findings(copy.deepcopy(rows), 5))


def _ranked(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    for row in rows:
        row["rank_in_study"] = None
    assign_ranks(rows)
    return rows


def _after(
    before: list[dict[str, Any]], after: list[dict[str, Any]]
) -> tuple[BudgetMemo, BudgetMemo]:
    """The memos of a run of ``before`` and of the next run, of ``after``; the second run's
    findings are those of a run that computes everything."""
    _, first = _run(before, {})
    got, second = _run(after, first.current)
    assert got == _fresh(after)
    return first, second


def _small_rows() -> list[dict[str, Any]]:
    """Two budgets of 12 scored trials, three horizons, two studies each."""
    rows = []
    for i in range(24):
        budget = ("2M", "20M")[i % 2]
        rows.append(
            {
                "study": f"s_{budget}_{i % 4 // 2}",
                "budget": budget,
                "horizon": ("h1", "h3", "h7")[i % 3],
                "trial_num": i,
                "state": "COMPLETE",
                "objective": 0.25 + ((i * 7) % 11) / 10,
                "direction": "minimize",
                "diverged": i % 5 == 0,
                "early_stopped": i % 3 == 0,
                "d_model": (64, 128, 256)[i % 3],
                "n_layers": (2, 4, 8)[(i // 3) % 3],
                "n_heads": (2, 4)[i % 2],
                "d_ff": 512,
                "lr": 10.0 ** -(2 + i % 3),
                "dropout": (0.0, 0.1)[i % 2],
                "epochs_config": (10, 20)[i % 2],
                "best_epoch": i % 7,
                "epochs_trained": 9,
                "stop_reason": ("early_stopped", "completed")[i % 2],
                "arch_style": ("balanced", "wide-shallow", "narrow-deep")[i % 3],
                "last_val_loss": 0.5 + i / 100,
                "train_loss": 0.4,
                "rank_in_study": None,
            }
        )
    return _ranked(rows)


# --- values the digest of a budget's rows must tell apart --------------------------------------


def test_negative_zero_in_a_text_column_is_a_change() -> None:
    """0.0 and -0.0 are one dict key, so a text column holding both gave the row changed from
    0.0 to -0.0 the code of the 0.0 seen first (in another budget): its budget's answer, which
    writes the value out (best_architecture's arch_style), was reused with the old value."""
    rows = _small_rows()
    for row in rows:
        row["arch_style"] = 0.0
    changed = copy.deepcopy(rows)
    for row in changed:
        if row["budget"] == "20M":
            row["arch_style"] = -0.0
    _after(rows, changed)


def test_nan_in_a_text_column_reuses_nothing_and_changes_nothing() -> None:
    rows = _small_rows()
    rows[3]["stop_reason"] = math.nan
    _, second = _after(rows, copy.deepcopy(rows))
    assert second.reused == 0


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("budget", None),  # the label "(none)"
        ("budget", "(none)"),  # the label of budget None, as a text
        ("budget", "2m"),  # "2M" spelled otherwise
        ("budget", "2M"),  # rows moved from 20M into 2M
        ("direction", "maximize"),  # the study changed direction
        ("state", "RUNNING"),
        ("diverged", 0),  # a flag as an int: no longer False
        ("diverged", 0.0),
        ("early_stopped", 1),
        ("horizon", "H1"),
        ("study", "s_2M_0"),  # a study of another budget's name
    ],
)
def test_a_text_or_flag_change_in_one_budget_gives_the_full_findings(
    column: str, value: Any
) -> None:
    rows = _small_rows()
    changed = copy.deepcopy(rows)
    for row in changed:
        if row["budget"] == "20M" and row["trial_num"] % 4 == 1:
            row[column] = value
    _after(rows, _ranked(changed))


@pytest.mark.parametrize(
    "value", [math.nan, math.inf, -math.inf, -0.0, 0.0, 1e308, 5e-324, None, True, 1, "0.5"]
)
def test_an_objective_changed_in_one_budget_gives_the_full_findings(value: Any) -> None:
    rows = _small_rows()
    rows[1]["objective"] = 0.0  # a budget 20M trial
    _ranked(rows)
    changed = copy.deepcopy(rows)
    changed[1]["objective"] = value
    _, second = _after(rows, _ranked(changed))
    if value == 0.0 and type(value) is float and math.copysign(1, value) > 0:
        assert second.computed == 0


def test_numbers_of_another_type_but_the_same_value_reuse_every_answer() -> None:
    """The findings read the trial frame's float64 columns: 64 and 64.0 are one value."""
    rows = _small_rows()
    changed = copy.deepcopy(rows)
    for row in changed:
        row["d_model"] = float(row["d_model"])
        row["epochs_config"] = float(row["epochs_config"])
    first, second = _after(rows, changed)
    assert second.computed == 0 and second.reused == first.computed


def test_a_flag_in_a_number_column_is_a_change() -> None:
    rows = _small_rows()
    changed = copy.deepcopy(rows)
    changed[1]["n_layers"] = True  # NaN in the trial frame, not 1
    _, second = _after(rows, changed)
    assert second.reused > 0


def test_a_budget_named_all_budgets_beside_the_pooled_group() -> None:
    rows = _small_rows()
    for row in rows:
        if row["budget"] == "2M":
            row["budget"] = "all budgets"
    changed = copy.deepcopy(rows)
    changed[1]["objective"] = 2.0  # the other budget
    _after(rows, _ranked(changed))
    # one budget only, named as the pooled group: same rows, same label
    alone = [row for row in rows if row["budget"] == "all budgets"]
    _after(alone, copy.deepcopy(alone))


def test_empty_rows_and_one_row() -> None:
    _after([], [])
    one = _small_rows()[:1]
    _after([], one)
    _after(one, [])


def test_many_budgets_with_one_changed() -> None:
    rows = [
        {
            "study": f"s{b}",
            "budget": f"b{b:03d}",
            "trial_num": t,
            "state": "COMPLETE",
            "objective": float((b * 3 + t) % 7),
            "direction": "minimize",
            "diverged": t == 0,
            "n_layers": float(1 + t),
            "d_model": 64.0,
            "n_heads": 4.0,
        }
        for b in range(300)
        for t in range(6)
    ]
    changed = copy.deepcopy(rows)
    changed[7]["objective"] = 9.5  # budget b001
    memo = BudgetMemo()
    for frame in (trial_frame(rows), trial_frame(changed)):
        expected = _encoded([best_architecture(frame), divergence_by_depth(frame)])
        memo = BudgetMemo(memo.current)
        memo.bind(frame, b"test")
        with kept_budgets(memo):
            assert _encoded([best_architecture(frame), divergence_by_depth(frame)]) == expected
    assert memo.computed == 2 and memo.reused == 2 * 300 - 2


# --- what a compute reads besides its budget's rows --------------------------------------------


def _frame() -> Frame:
    return trial_frame(
        [{"budget": b, "objective": float(i), "state": "COMPLETE"} for i, b in enumerate("aabbb")]
    )


def _memo_runs(frame: Frame, finding: Callable[[], Any], runs: int = 2) -> list[Any]:
    """``finding()`` in ``runs`` runs, each reusing the answers of the one before."""
    results, memo = [], BudgetMemo()
    for _ in range(runs):
        memo = BudgetMemo(memo.current)
        memo.bind(frame, b"test")
        with kept_budgets(memo):
            results.append(finding())
    return results


def test_a_function_of_the_same_name_with_other_code_is_another_answer() -> None:
    """A compute's key names its qualified name, closure and defaults, not its code: two
    computes defined under one name (a branch, a loop, a lambda) share their answers."""
    frame = _frame()
    flag = {"first": True}

    def finding() -> list[list[Any]]:
        if flag["first"]:

            def compute(budget: Budget, tally: Tally) -> None:
                tally.table.append([budget.label, "first"])
        else:

            def compute(budget: Budget, tally: Tally) -> None:
                tally.table.append([budget.label, "second"])

        return per_budget(frame, compute).table

    memo = BudgetMemo()
    memo.bind(frame, b"test")
    with kept_budgets(memo):
        assert finding() == [["a", "first"], ["b", "first"]]
    flag["first"] = False
    again = BudgetMemo(memo.current)
    again.bind(frame, b"test")
    with kept_budgets(again):
        assert finding() == [["a", "second"], ["b", "second"]]


def test_two_lambdas_of_one_name_select_apart() -> None:
    frame = _frame()
    selects = [lambda f: f.where(f["objective"] >= 1.0), lambda f: f.where(f["objective"] < 3.0)]

    def count(budget: Budget, tally: Tally) -> None:
        tally.table.append([budget.label, budget.n])

    def finding() -> list[Any]:
        return [per_budget(frame, count, select=select).table for select in selects]

    expected = [[["a", 1], ["b", 3]], [["a", 2], ["b", 1]]]
    assert _memo_runs(frame, finding) == [expected, expected]


class _Scale:
    def __init__(self, factor: float) -> None:
        self.factor = factor

    def compute(self, budget: Budget, tally: Tally) -> None:
        tally.table.append([budget.label, self.factor * budget.n])


def _scaled(factor: float, budget: Budget, tally: Tally) -> None:
    tally.table.append([budget.label, factor * budget.n])


def test_what_a_closure_holds_that_has_no_digest_is_computed_every_time() -> None:
    frame = _frame()
    other = trial_frame([{"budget": "a", "objective": 5.0}])
    state: dict[str, Any] = {"factor": 1.0, "object": _Scale(1.0), "frames": [frame]}

    def reads_a_dict_of_frames(budget: Budget, tally: Tally) -> None:
        tally.table.append([budget.label, len(state["frames"][0]) * state["factor"]])

    def reads_another_frame(budget: Budget, tally: Tally) -> None:
        tally.table.append([budget.label, len(other)])

    def reads_an_object(budget: Budget, tally: Tally) -> None:
        tally.table.append([budget.label, state["object"].factor])

    memos: list[BudgetMemo] = []
    for factor in (1.0, 2.0):
        state["factor"] = factor
        state["object"] = _Scale(factor)
        memo = BudgetMemo(memos[-1].current if memos else None)
        memo.bind(frame, b"test")
        with kept_budgets(memo):
            assert per_budget(frame, functools.partial(_scaled, factor)).table == [
                ["a", 2 * factor],
                ["b", 3 * factor],
            ]
            assert per_budget(frame, _Scale(factor).compute).table == [
                ["a", 2 * factor],
                ["b", 3 * factor],
            ]
            assert per_budget(frame, reads_a_dict_of_frames).table == [
                ["a", 5 * factor],
                ["b", 5 * factor],
            ]
            assert per_budget(frame, reads_another_frame).table == [["a", 1], ["b", 1]]
            assert per_budget(frame, reads_an_object).table == [["a", factor], ["b", factor]]
        memos.append(memo)
    assert memos[-1].reused == 0


def test_a_closure_value_changed_between_runs_is_a_change() -> None:
    frame = _frame()
    weights = [1.0, 2.0]
    column = np.array([1.0, 2.0, 3.0, 4.0, 5.0])

    def finding() -> list[list[Any]]:
        extra = frame.with_columns(_w=column * weights[0])

        def compute(budget: Budget, tally: Tally) -> None:
            total = float(np.sum(budget.whole["_w"]))
            tally.table.append([budget.label, total * weights[1], list(weights)])

        return per_budget(extra, compute).table

    memo = BudgetMemo()
    for w in ([1.0, 2.0], [1.0, -0.0], [1.0, 0.0], [2.0, 1.0], [2, 1.0], [True, 1.0]):
        weights[:] = w
        expected = finding()  # no memo in effect
        memo = BudgetMemo(memo.current)
        memo.bind(frame, b"test")
        with kept_budgets(memo):
            assert dumps_lossless(finding()) == dumps_lossless(expected), w
        assert memo.reused == 0, w


def test_one_compute_called_with_other_parameters() -> None:
    frame = trial_frame(
        [
            {"budget": b, "objective": float(i), "state": s, "direction": d, "diverged": False}
            for i, (b, s, d) in enumerate(
                [
                    ("a", "COMPLETE", "minimize"),
                    ("a", "FAIL", "maximize"),
                    ("a", "COMPLETE", "minimize"),
                    ("b", "COMPLETE", "maximize"),
                    ("b", "COMPLETE", "minimize"),
                ]
            )
        ]
    )

    def compute(budget: Budget, tally: Tally) -> None:
        tally.table.append([budget.label, budget.n, budget.direction, budget.directed])
        tally.total += 1

    def short(budget: Budget, marker: str) -> list[Any]:
        return [budget.label, marker]

    calls: list[dict[str, Any]] = [
        {},
        {"select": _scored},
        {"directed": True},
        {"select": _scored, "directed": True},
        {"directed": True, "short": short},
        {"min_n": 3, "short": short},
        {"pooled": True},
        {"pooled": True, "select": _scored, "count": False},
    ]

    def finding() -> list[Any]:
        return [
            (tally.table, tally.parts, tally.total)
            for tally in (per_budget(frame, compute, **call) for call in calls)
        ]

    expected = finding()
    assert _memo_runs(frame, finding, runs=3) == [expected] * 3


def _reads(function: types.FunctionType) -> list[tuple[str, Any]]:
    """The globals a function (and the functions and code it holds) reads."""
    found: list[tuple[str, Any]] = []
    codes = [function.__code__]
    while codes:
        code = codes.pop()
        codes.extend(c for c in code.co_consts if isinstance(c, types.CodeType))
        for name in code.co_names:
            if name in function.__globals__:
                found.append((name, function.__globals__[name]))
    for cell in function.__closure__ or ():
        if isinstance(cell.cell_contents, types.FunctionType):
            found.extend(_reads(cell.cell_contents))
    return found


_CONSTANT = (int, float, str, bytes, bool, type(None), tuple, frozenset)


def _constant(value: Any) -> bool:
    """An atom, or a container of atoms (a module-level list of column names, which no code
    changes: the source holds it)."""
    if isinstance(value, tuple | frozenset | list):
        return all(_constant(v) for v in value)
    if isinstance(value, dict):
        return all(_constant(k) and _constant(v) for k, v in value.items())
    return isinstance(value, _CONSTANT)


def test_the_package_computes_read_no_global_that_can_change() -> None:
    """An answer is reused when the package's source is the same: a compute (or select) that
    read a module global which changes while the source does not (a dict filled at run time)
    would be reused with an old value."""
    seen: dict[str, types.FunctionType] = {}

    class Recorded(BudgetMemo):
        def answer(self, compute: Any, budget: Budget, tally: Tally, select: Any) -> None:
            for function in (compute, select):
                if isinstance(function, types.FunctionType):
                    seen[function.__qualname__] = function
            super().answer(compute, budget, tally, select)

    all_findings(copy.deepcopy(_small_rows()), 5, Recorded())
    assert len(seen) > 20
    changing = []
    for qualname, function in seen.items():
        for name, value in _reads(function):
            if isinstance(value, types.ModuleType | type) or callable(value):
                continue
            if not _constant(value):
                changing.append((qualname, name, type(value).__name__))
    assert changing == []


# --- a finding whose answer was an error of the moment ------------------------------------------


def _tree(tmp_path: Path) -> Path:
    src = tmp_path / "hpo"
    generate_example(src, trials_per_study=12, n_diverged=2)
    return src


def _files(out: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(out)): p.read_bytes()
        for p in sorted(out.rglob("*"))
        if p.is_file() and CACHE_DIR not in p.parts
    }


def _studies(src: Path) -> list[Path]:
    return sorted(p for p in src.iterdir() if (p / "trials").is_dir())


def _trial_files(src: Path, at: int = 0) -> list[Path]:
    return sorted((_studies(src)[at] / "trials").glob("*.json"))


def _change_objective(src: Path) -> None:
    path = _trial_files(src)[3]
    data = json.loads(path.read_text())
    data["value"] = data["value"] + 0.125
    path.write_text(json.dumps(data, indent=2))


def _add_trial(src: Path) -> None:
    last = _trial_files(src)[-1]
    data = json.loads(last.read_text())
    data["trial_number"], data["value"] = 12, 0.3
    (last.parent / "trial_0012.json").write_text(json.dumps(data, indent=2))


def _remove_trial(src: Path) -> None:
    _trial_files(src)[-1].unlink()


def _new_horizon(src: Path) -> None:
    study = _studies(src)[0]
    shutil.copytree(study, src / study.name.replace("_h1_", "_h9_"))


def _negative_zero(src: Path) -> None:
    for path in _trial_files(src)[:2]:
        data = json.loads(path.read_text())
        data["value"] = 0.0 if path.name.endswith("0.json") else -0.0
        path.write_text(json.dumps(data, indent=2))


class _Counted:
    """BudgetMemo subclasses put in hpo_analysis.analyze, each instance recorded."""

    def __init__(self, monkeypatch: Any) -> None:
        self.memos: list[BudgetMemo] = []
        memos = self.memos

        class Recorded(BudgetMemo):
            def __init__(self, previous: dict[str, bytes] | None = None) -> None:
                super().__init__(previous)
                memos.append(self)

        monkeypatch.setattr(analyze, "BudgetMemo", Recorded)


@pytest.mark.parametrize(
    "change", [_change_objective, _add_trial, _remove_trial, _new_horizon, _negative_zero]
)
def test_a_run_after_a_study_changed_reuses_and_matches_a_full_run(
    tmp_path: Path, monkeypatch: Any, change: Callable[[Path], None]
) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    src = _tree(tmp_path)
    out = tmp_path / "analysis"
    extract([src], out, command="x")
    change(src)
    counted = _Counted(monkeypatch)
    extract([src], out, command="x")
    assert len(counted.memos) == 1
    assert counted.memos[0].reused > 0 and counted.memos[0].computed > 0
    kept = tmp_path / "kept"
    out.rename(kept)
    extract([src], out, command="x", cache=False)
    assert _files(kept) == _files(out)


def test_an_importance_that_failed_once_is_computed_again(tmp_path: Path, monkeypatch: Any) -> None:
    """param_importance turns any exception of the evaluator into a 'not computed' answer.
    An error of the moment (memory, an interrupted import) is kept as that budget's answer,
    and every later run reuses it while the budget's trials stay the same, though the
    other studies changed: the outputs are not those of a run that computes them."""
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    src = _tree(tmp_path)
    out = tmp_path / "analysis"
    real = importance_module._importance

    def fails(scored: Frame, direction: str) -> Any:
        raise MemoryError

    monkeypatch.setattr(importance_module, "_importance", fails)
    extract([src], out, command="x")
    assert b"not computed: MemoryError" in (out / "findings.json").read_bytes()
    monkeypatch.setattr(importance_module, "_importance", real)
    _change_objective(src)  # one study of budget 200M
    extract([src], out, command="x")
    fresh = tmp_path / "fresh"
    extract([src], fresh, command="x", cache=False)
    assert b"not computed" not in (fresh / "findings.json").read_bytes()
    assert b"not computed: MemoryError" not in (out / "findings.json").read_bytes()
    assert _files(out) == _files(fresh)


# --- kept answer files: damaged, planted, not files ---------------------------------------------


@pytest.fixture(scope="module")
def kept_tree(tmp_path_factory: Any) -> tuple[Path, Path, dict[str, bytes]]:
    """A tree with one study changed after a cached run, the cached output (before the change)
    and the outputs of a full run of the changed tree."""
    os.environ["SOURCE_DATE_EPOCH"] = "1700000000"
    try:
        tmp = tmp_path_factory.mktemp("kept")
        src = _tree(tmp)
        out = tmp / "analysis"
        extract([src], out, command="x")
        _change_objective(src)
        fresh = tmp / "fresh"
        extract([src], fresh, command="x", cache=False)
        return src, out, _files(fresh)
    finally:
        del os.environ["SOURCE_DATE_EPOCH"]


def _rerun_with(
    tmp_path: Path,
    kept_tree: tuple[Path, Path, dict[str, bytes]],
    plant: Callable[[Path, dict[str, bytes]], None],
    monkeypatch: Any,
) -> tuple[dict[str, bytes], dict[str, bytes]]:
    """The outputs of a run over the cached output whose answers ``plant`` replaced, and those
    of a full run."""
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    src, saved, fresh = kept_tree
    out = tmp_path / "analysis"
    shutil.copytree(saved, out)
    kept = cached_answers(out)
    assert kept
    (out / CACHE_DIR / RUN_FILE).unlink()
    (out / CACHE_DIR / FINDINGS_FILE).unlink()
    plant(out / CACHE_DIR, kept)
    extract([src], out, command="x")
    return _files(out), fresh


_NOT_ANSWERS = {
    "a row that is no list": ([1], [], [], [], 0),
    "a part that is no text": ([], [1], [], [], 0),
    "a quiet budget that is no text": ([], [], [], [7], 0),
    "an estimate that is no dict": ([], [], [3], [], 0),
}


@pytest.mark.parametrize("planted", sorted(_NOT_ANSWERS))
def test_a_planted_answer_of_the_wrong_shape_is_not_used(
    tmp_path: Path, kept_tree: Any, monkeypatch: Any, planted: str
) -> None:
    """A file that matches its sha256 (which anyone can compute) holding tuples of lists of
    other values than a compute appends: the run crashed (TypeError) in the code that reads
    the tally. cached_findings checks the shape of what it loads; _load checks only that the
    four parts are lists."""
    data = pickle.dumps(_NOT_ANSWERS[planted], protocol=5)

    def plant(directory: Path, kept: dict[str, bytes]) -> None:
        keep_answers(directory, dict.fromkeys(kept, data))

    got, fresh = _rerun_with(tmp_path, kept_tree, plant, monkeypatch)
    assert got == fresh


def _shared(levels: int) -> bytes:
    """A pickle of a few hundred bytes whose answer holds 2**levels values: each level a list
    of the level below twice (the pickle's memo refers to it again)."""
    value: list[Any] = ["x"]
    for _ in range(levels):
        value = [value, value]
    return pickle.dumps(([["2M", 1, value]], [], [], [], 0), protocol=5)


def _nested(depth: int) -> bytes:
    """A pickle of an answer whose one row is nested ``depth`` lists deep (no recursion)."""
    lists = b"]" * depth + b"a" * (depth - 1)
    return b"\x80\x05(]" + lists + b"a]]]K\x00t."


# 60 levels: 2**60 values in 300 bytes, whose findings no writer ends (a planted answer of
# 18 levels in every key of a small tree took 24 GB before it was killed)
_UNLOADABLE = {
    "one object many times": _shared(60),
    "nested 100,000 deep": _nested(100_000),
    "a bytearray": pickle.dumps(([[bytearray(b"x")]], [], [], [], 0), protocol=5),
    "a set": pickle.dumps(([[{"x"}]], [], [], [], 0), protocol=5),
    "a row that is no list": pickle.dumps(([1], [], [], [], 0), protocol=5),
}


@pytest.mark.parametrize("name", sorted(_UNLOADABLE))
def test_load_refuses_what_no_compute_appends(name: str) -> None:
    """What _dump writes has no memo (fast mode), no container in itself and only the values a
    compute appends; a planted answer with anything else should not reach the writers."""
    with pytest.raises(Exception):  # noqa: B017 - any refusal will do
        _load(_UNLOADABLE[name])


def test_what_compute_appends_still_loads() -> None:
    added = (
        [["2M", 3, 0.5, None, True, "x", -0.0, math.inf, [1, 2]]],
        ["2M part"],
        [{"budget": "2M", "value": 0.5, "ci_low": None}],
        ["20M"],
        3,
    )
    assert _load(_dump(added)) == added


def _planted_pickles() -> dict[str, bytes]:
    huge = 2**62
    return {
        "runs a command": b"cos\nsystem\n(S'touch planted'\ntR.",
        "a class by stack_global": pickle.dumps(Path("x"), protocol=5),
        "an extension code": b"\x80\x05\x82\xf0(X\x04\x00\x00\x00trueto.",
        "a persistent id": b"\x80\x05X\x01\x00\x00\x00x\x94Q.",
        "a bytearray of 2**62 bytes": b"\x80\x05\x96" + struct.pack("<Q", huge) + b".",
        "bytes of 2**62 bytes": b"\x80\x05\x8e" + struct.pack("<Q", huge) + b".",
        "a frame of 2**62 bytes": b"\x80\x05\x95" + struct.pack("<Q", huge) + b"N.",
        "cut short": _dump(([["2M"]], [], [], [], 0))[:-3],
        "not a tuple": _dump([[], [], [], [], 0]),
        "four parts": _dump(([], [], [], [])),
        "a float total": _dump(([], [], [], [], 1.0)),
        "a bool total": _dump(([], [], [], [], True)),
        "empty": b"",
    }


def test_planted_pickles_run_nothing_and_are_computed_again(
    tmp_path: Path, monkeypatch: Any
) -> None:
    monkeypatch.chdir(tmp_path)
    rows = _small_rows()
    expected = _fresh(rows)
    _, first = _run(rows, {})
    copyreg.add_extension("os", "system", 240)
    try:
        for name, data in _planted_pickles().items():
            got, memo = _run(rows, dict.fromkeys(first.current, data))
            assert got == expected, name
            assert memo.reused == 0 and memo.computed == first.computed, name
    finally:
        copyreg.remove_extension("os", "system", 240)
    assert not (tmp_path / "planted").exists()


def _body(answers: dict[str, bytes]) -> bytes:
    return b"".join(
        bytes.fromhex(k) + len(v).to_bytes(8, "little") + v for k, v in sorted(answers.items())
    )


def _file(body: bytes, **head: Any) -> bytes:
    import hashlib

    record = {"format": CACHE_FORMAT, "entries": 1, "sha256": hashlib.sha256(body).hexdigest()}
    record.update(head)
    return json.dumps(record).encode() + b"\n" + body


def test_damaged_answer_files_give_no_answers(tmp_path: Path) -> None:
    key = "ab" * 32
    one = _body({key: b"x"})
    cases = {
        "empty": b"",
        "head only": _file(b"", entries=0)[:-1],
        "no newline": b"\x80" * 1000,
        "head not json": b"{format\n" + one,
        "head a list": b"[]\n" + one,
        "head nested deep": b"[" * 100_000 + b"\n" + one,
        "other format": _file(one, format=CACHE_FORMAT + 1),
        "format as text": _file(one, format=str(CACHE_FORMAT)),
        "sha256 of other bytes": _file(one, sha256="0" * 64),
        "more entries said": _file(one, entries=2),
        "entries as text": _file(one, entries="1"),
        "size beyond the end": _file(bytes.fromhex(key) + (2**63).to_bytes(8, "little") + b"x"),
        "size beyond 2**64": _file(bytes.fromhex(key) + b"\xff" * 8 + b"x"),
        "a key cut short": _file(b"\xab" * 20),
        "one key twice": _file(_body({key: b"x"}) + _body({key: b"y"}), entries=2),
    }
    answers = tmp_path / CACHE_DIR / ANSWERS_FILE
    answers.parent.mkdir()
    for name, content in cases.items():
        answers.write_bytes(content)
        assert cached_answers(tmp_path) == {}, name
    answers.write_bytes(_file(one))
    assert cached_answers(tmp_path) == {key: b"x"}


def _within(seconds: float, function: Callable[[], Any]) -> Any:
    result: list[Any] = []
    thread = threading.Thread(target=lambda: result.append(function()), daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), "blocked"
    return result[0]


def test_answer_files_that_are_not_regular_files(tmp_path: Path) -> None:
    answers = tmp_path / CACHE_DIR / ANSWERS_FILE
    answers.parent.mkdir()
    os.mkfifo(answers)
    assert _within(5, lambda: cached_answers(tmp_path)) == {}
    answers.unlink()
    answers.mkdir()
    assert cached_answers(tmp_path) == {}
    answers.rmdir()
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for target in (fifo, tmp_path / "missing", Path("/dev/zero"), tmp_path / CACHE_DIR):
        answers.symlink_to(target)
        assert _within(5, lambda: cached_answers(tmp_path)) == {}, target
        answers.unlink()
    # a link to a good file elsewhere is read (the cache directory is the user's)
    elsewhere = tmp_path / "elsewhere.bin"
    keep_answers(tmp_path, {"cd" * 32: b"y"})
    (tmp_path / ANSWERS_FILE).rename(elsewhere)
    answers.symlink_to(elsewhere)
    assert cached_answers(tmp_path) == {"cd" * 32: b"y"}


def test_a_run_over_an_answer_file_that_is_a_fifo_or_a_directory(
    tmp_path: Path, kept_tree: Any, monkeypatch: Any
) -> None:
    def fifo(directory: Path, kept: dict[str, bytes]) -> None:
        (directory / ANSWERS_FILE).unlink()
        os.mkfifo(directory / ANSWERS_FILE)

    got, fresh = _within(30, lambda: _rerun_with(tmp_path / "a", kept_tree, fifo, monkeypatch))
    assert got == fresh

    def directory(directory: Path, kept: dict[str, bytes]) -> None:
        (directory / ANSWERS_FILE).unlink()
        (directory / ANSWERS_FILE).mkdir()

    got, fresh = _rerun_with(tmp_path / "b", kept_tree, directory, monkeypatch)
    assert got == fresh


def _check_values_one_by_one(value: Any, budget: int) -> None:
    """The definition of memo._check_values: every value visited on its own."""
    from hpo_analysis.analyze.memo import _ATOMS, _DEPTH

    seen: set[int] = set()
    stack: list[tuple[Any, int]] = [(value, 0)]
    count = 0
    while stack:
        item, depth = stack.pop()
        count += 1
        if count > budget:
            raise ValueError("more values than the pickle can hold")
        kind = type(item)
        if kind in _ATOMS or (kind is tuple and not item):
            continue
        if kind not in (list, tuple, dict) or depth >= _DEPTH:
            raise ValueError("not an answer")
        if id(item) in seen:
            raise ValueError("a value reached twice")
        seen.add(id(item))
        if kind is dict:
            if not all(type(k) is str for k in item):
                raise ValueError("not an answer")
            stack.extend((v, depth + 1) for v in item.values())
        else:
            stack.extend((v, depth + 1) for v in item)


_MEMO_ATOM = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=3), st.binary(max_size=2)
)


@settings(max_examples=400, deadline=None)
@given(
    st.recursive(
        st.one_of(_MEMO_ATOM, st.just(()), st.builds(object), st.just(frozenset())),
        lambda inner: st.one_of(
            st.lists(inner, max_size=4),
            st.lists(inner, max_size=3).map(tuple),
            st.dictionaries(st.one_of(st.text(max_size=2), st.integers(0, 2)), inner, max_size=3),
        ),
        max_leaves=30,
    ),
    st.integers(0, 40),
    st.booleans(),
    st.integers(1, 40),
)
def test_values_are_checked_as_one_by_one(
    value: Any, budget: int, shared: bool, depth: int
) -> None:
    """The check of a kept answer accepts and refuses what the value-by-value definition
    does: containers of atoms counted at once, a container reached twice, too deep, keys that
    are not text, objects that are not built-in values, and the value budget."""
    from hpo_analysis.analyze.memo import _check_values

    if shared:  # one list reached twice
        value = [value, value] if isinstance(value, list) else value
    for _ in range(depth if depth > 30 else 0):  # beyond _DEPTH
        value = [value]

    def outcome(check: Any) -> str:
        try:
            check(value, budget)
        except ValueError:
            return "refused"
        return "accepted"

    assert outcome(_check_values) == outcome(_check_values_one_by_one)


@pytest.mark.parametrize("wrapped", range(28, 34))
@pytest.mark.parametrize("shape", ["table", "shared row", "row seen before", "mixed"])
def test_tables_are_checked_as_one_by_one(wrapped: int, shape: str) -> None:
    """A table (a list of rows of atoms) at every depth around the limit, with a row that is
    reached twice or was reached before, as the value-by-value definition decides."""
    from hpo_analysis.analyze.memo import _check_values

    row = [1, "a", None]
    table: list[Any] = [[2.0, True], [b"x"], []]
    if shape == "shared row":
        table = [row, [3], row]
    elif shape == "row seen before":
        table = [[3], row]
    elif shape == "mixed":
        table = [[3], (4,), [5]]
    # (the last value of a list is checked first)
    value: Any = [table, row] if shape == "row seen before" else table
    for _ in range(wrapped):
        value = [value]
    for budget in (5, 12, 1000):

        def outcome(check: Any, budget: int = budget) -> str:
            try:
                check(value, budget)
            except ValueError:
                return "refused"
            return "accepted"

        assert outcome(_check_values) == outcome(_check_values_one_by_one), budget


# --- tables kept as columns -------------------------------------------------------------------


def _column_values(rows: int) -> st.SearchStrategy[list[Any]]:
    """One column of ``rows`` values, of the kinds a finding's table holds: floats (NaN, ±inf
    and -0.0 included) or integers of any size, each maybe with None; text, flags, None and
    integers together; or any atoms."""
    maybe_none = st.booleans()

    def with_none(values: st.SearchStrategy[Any]) -> st.SearchStrategy[list[Any]]:
        return maybe_none.flatmap(
            lambda none: st.lists(
                st.one_of(values, st.none()) if none else values, min_size=rows, max_size=rows
            )
        )

    return st.one_of(
        with_none(st.floats()),
        with_none(st.integers()),
        with_none(st.integers(-(2**63), 2**63 - 1)),
        st.lists(
            st.one_of(
                st.sampled_from(["a", "b", "not tried"]),
                st.none(),
                st.booleans(),
                st.integers(0, 3),
            ),
            min_size=rows,
            max_size=rows,
        ),
        st.lists(_MEMO_ATOM, min_size=rows, max_size=rows),
    )


@st.composite
def _tables(draw: Any) -> list[list[Any]]:
    rows = draw(st.integers(1, 12))
    columns = draw(st.lists(_column_values(rows), min_size=1, max_size=5))
    table = [list(row) for row in zip(*columns, strict=True)]
    if draw(st.booleans()) and draw(st.booleans()):  # now and then a table that is no table
        table[draw(st.integers(0, rows - 1))].append(draw(_MEMO_ATOM))
    return table


@settings(max_examples=300, deadline=None)
@given(_tables())
def test_a_table_kept_as_columns_reads_back_exactly(table: list[list[Any]]) -> None:
    """Every value of a kept table reads back with its type and, for a float, its bits (1,
    1.0 and True differ, as do 0.0 and -0.0, and NaN keeps its payload); rows of one length
    are kept as columns, others as they are."""
    from hpo_analysis.analyze.memo import _packed

    packed = _packed(table)
    rectangular = len({len(row) for row in table}) == 1
    assert isinstance(packed, tuple) == rectangular
    got = _load(_dump((packed, ["p"], [], [], 1)))
    assert _dump(got) == _dump((table, ["p"], [], [], 1))
    assert all(type(row) is list for row in got[0])
    assert len({id(row) for row in got[0]}) == len(table)


def _planted_tables() -> dict[str, Any]:
    eight = (1).to_bytes(8, "little")
    return {
        "a code beyond the values": ("columns", 1, [("k", ["a"], (1).to_bytes(8, "little"))]),
        "a negative code": ("columns", 1, [("k", ["a"], (-1).to_bytes(8, "little", signed=True))]),
        "a None beyond the column": ("columns", 1, [("d", eight, (5).to_bytes(8, "little"))]),
        "columns of two lengths": ("columns", 1, [("q", eight, b""), ("q", eight * 2, b"")]),
        "fewer rows than said": ("columns", 2, [("q", eight, b"")]),
        "a cut number": ("columns", 1, [("d", eight[:7], b"")]),
        "a list among the values": ("columns", 1, [("k", [["x"]], bytes(8))]),
        "a list in a plain column": ("columns", 1, [("v", [["x"]])]),
        "a set in a plain column": ("columns", 1, [("v", [{"x"}])]),
        "an unknown kind": ("columns", 1, [("z", eight, b"")]),
        "no columns": ("columns", 1, []),
        "no rows": ("columns", 0, [("v", [])]),
        "more rows than bytes": ("columns", 10**12, [("v", [])] * 3),
        "not columns": ("rows", 1, [("v", [1])]),
    }


@pytest.mark.parametrize("name", sorted(_planted_tables()))
def test_a_planted_table_of_columns_is_refused(name: str) -> None:
    with pytest.raises(ValueError):
        _load(_dump((_planted_tables()[name], [], [], [], 0)))


def _colliding_ints(n: int) -> list[int]:
    """Integers whose hashes are all 0 (multiples of 2^61 − 1)."""
    return [i * (2**61 - 1) for i in range(n)]


_PLANTED_OPCODES = {
    # the unpickler makes its memo as large as the index stored at (2^26: 1 GB of zeros)
    "a memo index of 2^26": b"\x80\x05]r" + struct.pack("<I", 2**26) + b".",
    "a memo (what pickle.dumps writes)": pickle.dumps(([["2M"]], [], [], [], 0), protocol=5),
    "a set": b"\x80\x05\x8f(K\x01K\x02\x90.",  # EMPTY_SET, MARK, 1, 2, ADDITEMS
    "a set of colliding integers": pickle.dumps(
        ([[set(_colliding_ints(50))]], [], [], [], 0), protocol=5
    ),
    "a dict of integer keys": _dump(([], [], [dict.fromkeys(_colliding_ints(50), 0)], [], 0)),
    "a dict key that is a tuple": _dump(([], [], [{(1, "a"): 0}], [], 0)),
}


@pytest.mark.parametrize("name", sorted(_PLANTED_OPCODES))
def test_a_kept_answer_with_opcodes_dump_never_writes_is_refused_before_loading(
    name: str, monkeypatch: Any
) -> None:
    """The opcodes are read before the unpickler runs: a planted memo index, a set, or a dict
    whose keys are not text is refused without making anything."""
    from hpo_analysis.analyze import memo

    def no_loading(*_: Any, **__: Any) -> Any:
        raise AssertionError("unpickled")

    monkeypatch.setattr(memo._BuiltinsOnly, "load", no_loading)
    with pytest.raises(ValueError):
        _load(_PLANTED_OPCODES[name])


def test_every_answer_dump_writes_passes_the_opcode_check() -> None:
    from hpo_analysis.analyze.memo import _check_opcodes, _packed

    table = [["2M", 1, 0.5, None, True, (1, ("a", [2.0])), b"x", 2**70, {"k": [1]}]] * 3
    for added in [
        (table, ["p"], [{"budget": "2M", "ci": (0.1, 0.2), "n": {"a": 1}}], ["q"], 1),
        (_packed([[1, "a", 0.5], [2, "b", None]]), [], [], [], 0),
        ([], [], [], [], 0),
    ]:
        _check_opcodes(_dump(added))
        assert _load(_dump(added))[4] == added[4]
