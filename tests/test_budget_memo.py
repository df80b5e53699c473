"""A finding's answer for a budget whose rows did not change is taken from the last run: the
findings, and every output, are the bytes of a run that computes them all."""

from __future__ import annotations

import copy
import os
import pickle
import shutil
from pathlib import Path
from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from hpo_analysis import analyze, extract
from hpo_analysis.analyze import BudgetMemo, all_findings, trial_frame
from hpo_analysis.analyze.frame import Budget, Tally, per_budget
from hpo_analysis.analyze.memo import kept_budgets
from hpo_analysis.cache import (
    ANSWERS_FILE,
    CACHE_DIR,
    FINDINGS_FILE,
    RUN_FILE,
    cached_answers,
    keep_answers,
)
from hpo_analysis.derive import assign_ranks
from hpo_analysis.example import generate_example
from hpo_analysis.jsonio import dumps_lossless

from .test_analyze import _example_rows, rows_strategy


def _encoded(findings: list[Any]) -> bytes:
    return b"\n".join(dumps_lossless(f.to_dict()) for f in findings)


def _memo_runs(rows: list[dict[str, Any]], previous: dict[str, bytes]) -> tuple[bytes, BudgetMemo]:
    memo = BudgetMemo(dict(previous))
    return _encoded(all_findings(copy.deepcopy(rows), 5, memo)), memo


def test_unchanged_budgets_are_reused_and_changed_ones_computed() -> None:
    rows = _example_rows()
    assign_ranks(rows)
    fresh = _encoded(all_findings(copy.deepcopy(rows), 5))
    first, memo = _memo_runs(rows, {})
    assert first == fresh and memo.reused == 0 and memo.computed > 40
    assert len(memo.current) == memo.computed  # every answer of these rows is kept
    again, second = _memo_runs(rows, memo.current)
    assert again == fresh and second.computed == 0 and second.reused == memo.computed
    # one budget's trials change: its answers (and the pooled ones) are computed again
    changed = copy.deepcopy(rows)
    for row in changed:
        if row["budget"] == "20M" and row["trial_num"] % 5 == 0:
            row["objective"] = row["objective"] + 0.25
    assign_ranks(changed)
    expected = _encoded(all_findings(copy.deepcopy(changed), 5))
    assert expected != fresh
    got, third = _memo_runs(changed, memo.current)
    assert got == expected
    assert 0 < third.computed < second.reused and third.reused > 0
    # another top_k reuses nothing
    other = BudgetMemo(dict(memo.current))
    all_findings(copy.deepcopy(rows), 6, other)
    assert other.reused == 0


# values a re-read trial may hold instead (each of the type the pipeline gives the column)
_CHANGES: dict[str, list[Any]] = {
    "objective": [None, 0.5, -1.0, float("inf")],
    "diverged": [None, True, False],
    "budget": [None, "2M", "2B", "20M"],
    "d_model": [None, 8, 64],
    "state": ["COMPLETE", "FAIL", "PRUNED"],
    "direction": ["minimize", "maximize"],
}


@settings(max_examples=30, deadline=None)
@given(rows_strategy, st.data())
def test_any_change_gives_the_findings_of_a_full_computation(
    rows: list[dict[str, Any]], data: st.DataObject
) -> None:
    changed = copy.deepcopy(rows)  # read again: ranked afresh, as the pipeline does
    assign_ranks(rows)
    _, memo = _memo_runs(rows, {})
    if changed:
        at = data.draw(st.integers(0, len(changed) - 1))
        name, values = data.draw(st.sampled_from(sorted(_CHANGES.items())))
        value = data.draw(st.sampled_from(values))
        changed[at][name] = value
    assign_ranks(changed)
    expected = _encoded(all_findings(copy.deepcopy(changed), 5))
    got, _ = _memo_runs(changed, memo.current)
    assert got == expected


def test_the_closure_and_the_budget_are_in_the_key() -> None:
    frame = trial_frame([{"budget": b, "objective": float(i)} for i, b in enumerate("aabbb")])

    def finding(scale: float) -> Tally:
        def compute(budget: Budget, tally: Tally) -> None:
            tally.table.append([budget.label, scale * float(np.sum(budget.trials["objective"]))])

        return per_budget(frame, compute)

    memo = BudgetMemo()
    memo.bind(frame, b"test")
    with kept_budgets(memo):
        assert finding(1.0).table == [["a", 1.0], ["b", 9.0]]
        assert finding(2.0).table == [["a", 2.0], ["b", 18.0]]
    assert (memo.computed, memo.reused, len(memo.current)) == (4, 0, 4)
    again = BudgetMemo(memo.current)
    again.bind(frame, b"test")
    with kept_budgets(again):
        assert finding(2.0).table == [["a", 2.0], ["b", 18.0]]  # the answers of its closure
        assert finding(3.0).table == [["a", 3.0], ["b", 27.0]]  # another closure: computed
    assert (again.computed, again.reused) == (2, 2)
    changed = trial_frame([{"budget": b, "objective": float(i)} for i, b in enumerate("aabbc")])
    later = BudgetMemo(memo.current)
    later.bind(changed, b"test")
    frame = changed
    with kept_budgets(later):  # budget a unchanged, b lost a row, c is new
        assert finding(1.0).table == [["a", 1.0], ["b", 5.0], ["c", 4.0]]
    assert (later.computed, later.reused) == (2, 1)
    other = BudgetMemo(memo.current)
    other.bind(changed, b"other settings")
    with kept_budgets(other):
        finding(1.0)
    assert other.reused == 0


def test_an_answer_holding_other_objects_is_computed_every_time() -> None:
    frame = trial_frame([{"budget": "a", "objective": 1.0}])

    def compute(budget: Budget, tally: Tally) -> None:
        tally.table.append([np.float64(1.5)])  # no exact built-in form

    memo = BudgetMemo()
    memo.bind(frame, b"test")
    with kept_budgets(memo):
        assert per_budget(frame, compute).table == [[1.5]]
    assert memo.current == {}


def _tree(tmp_path: Path) -> Path:
    src = tmp_path / "hpo"
    generate_example(src, trials_per_study=12, n_diverged=2)
    return src


def _study_change(src: Path) -> None:
    """A study that is still running: some of its trials read again with other results."""
    study = sorted(p for p in src.iterdir() if (p / "trials").is_dir())[0]
    for path in sorted((study / "trials").glob("*.json"))[:6]:
        data = path.read_bytes()
        changed = data.replace(b'"state": "COMPLETE"', b'"state": "PRUNED"', 1)
        assert changed != data
        path.write_bytes(changed)


def _recorded_memos(monkeypatch: Any) -> list[BudgetMemo]:
    """The memos the next runs use (the pipeline's BudgetMemo replaced by one noting them)."""
    memos: list[BudgetMemo] = []

    class Recorded(BudgetMemo):
        def __init__(self, previous: dict[str, bytes | memoryview] | None = None) -> None:
            super().__init__(previous)
            memos.append(self)

    monkeypatch.setattr(analyze, "BudgetMemo", Recorded)
    return memos


def _files(out: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(out)): p.read_bytes()
        for p in sorted(out.rglob("*"))
        if p.is_file() and CACHE_DIR not in p.parts
    }


def test_a_run_after_one_study_changed_reuses_the_other_budgets(
    tmp_path: Path, monkeypatch: Any
) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    src = _tree(tmp_path)
    out = tmp_path / "analysis"
    extract([src], out, command="x")
    assert cached_answers(out)  # kept for the next run
    _study_change(src)
    memos = _recorded_memos(monkeypatch)
    extract([src], out, command="x")
    assert len(memos) == 1 and memos[0].reused > 0 and memos[0].computed > 0
    fresh = tmp_path / "fresh"
    extract([src], fresh, command="x", cache=False)
    assert _files(out) == _files(fresh)


def test_damaged_or_planted_answers_are_not_used(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    src = _tree(tmp_path)
    out = tmp_path / "analysis"
    extract([src], out, command="x")
    kept = cached_answers(out)
    assert kept
    fresh = tmp_path / "fresh"
    _study_change(src)
    extract([src], fresh, command="x", cache=False)
    marker = tmp_path / "ran"

    class Runs:  # a pickle that runs a command when loaded
        def __reduce__(self) -> Any:
            return (os.system, (f"touch {marker}",))

    planted = pickle.dumps(Runs())
    answers = out / CACHE_DIR / ANSWERS_FILE
    good = answers.read_bytes()
    head, _, body = good.partition(b"\n")

    damaged = [
        head + b"\n" + body[:-1] + bytes([body[-1] ^ 1]),  # sha256 no longer matches
        head + b"\n" + body[: len(body) // 2],  # cut short
        b"\x00" * 40,
        None,  # every answer replaced by the planted pickle (a well-formed file)
    ]
    saved = tmp_path / "saved"
    shutil.copytree(out, saved)
    for content in damaged:
        shutil.rmtree(out)
        shutil.copytree(saved, out)
        (out / CACHE_DIR / RUN_FILE).unlink()
        (out / CACHE_DIR / FINDINGS_FILE).unlink()
        if content is None:
            keep_answers(out / CACHE_DIR, {key: planted for key in kept})
        else:
            answers.write_bytes(content)
        extract([src], out, command="x")
        assert _files(out) == _files(fresh)
        assert not marker.exists()


def test_a_pooled_group_of_the_same_rows_is_another_answer() -> None:
    frame = trial_frame([{"budget": "a", "objective": 1.0}, {"budget": "a", "objective": 2.0}])

    def compute(budget: Budget, tally: Tally) -> None:
        tally.table.append([budget.label, budget.n])

    expected = [["a", 2], ["all budgets", 2]]
    memo = BudgetMemo()
    for _ in range(2):
        memo = BudgetMemo(memo.current)
        memo.bind(frame, b"test")
        with kept_budgets(memo):
            assert per_budget(frame, compute, pooled=True).table == expected
    assert memo.reused == 2


def test_a_text_value_alone_is_a_change() -> None:
    """Values the findings group or label by, changed with no number changing with them."""
    rows = _example_rows()
    assign_ranks(rows)
    _, memo = _memo_runs(rows, {})
    changes = [("arch_style", "wide"), ("stop_reason", "early_stopped"), ("horizon", "h99")]
    for name, value in changes:
        changed = copy.deepcopy(rows)
        for row in changed:
            if row["budget"] == "20M" and row["trial_num"] % 3 == 0:
                row[name] = value
        expected = _encoded(all_findings(copy.deepcopy(changed), 5))
        got, again = _memo_runs(changed, memo.current)
        assert got == expected, name
        assert again.reused > 0


def test_one_and_one_point_zero_are_different_values() -> None:
    """A text or flag column holding 1 in one run and 1.0 or True in the next is changed."""
    rows = [
        {"study": "s", "budget": "a", "trial_num": i, "objective": float(i), "diverged": 1}
        for i in range(6)
    ]
    _, memo = _memo_runs(rows, {})
    for value in (1.0, True):
        changed = [{**row, "diverged": value} if row["trial_num"] == 5 else row for row in rows]
        _, again = _memo_runs(changed, memo.current)
        assert again.reused == 0, value


def test_a_rows_digest_is_of_its_own_values_whatever_the_chunks(monkeypatch: Any) -> None:
    from hpo_analysis.analyze import memo

    rows = _example_rows()
    assign_ranks(rows)
    frame = trial_frame(rows)
    whole = memo._row_codes(frame)
    assert whole is not None and len({bytes(code) for code in whole}) == len(rows)
    monkeypatch.setattr(memo, "_CHUNK", 7)
    chunked = memo._row_codes(frame)
    assert chunked is not None and chunked.tobytes() == whole.tobytes()
    one = memo._row_codes(trial_frame(rows[100:101]))
    assert one is not None and one.tobytes() == whole[100].tobytes()


def test_answers_outlive_a_run_that_reuses_the_whole_findings(
    tmp_path: Path, monkeypatch: Any
) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    src = _tree(tmp_path)
    out = tmp_path / "analysis"
    extract([src], out, command="x")
    kept = cached_answers(out)
    (out / CACHE_DIR / RUN_FILE).unlink()  # not kept whole: the findings are taken whole

    def no_findings(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the findings were computed")

    with monkeypatch.context() as patched:
        patched.setattr(analyze, "all_findings", no_findings)
        extract([src], out, command="x")
    assert cached_answers(out) == kept
    _study_change(src)
    memos = _recorded_memos(monkeypatch)
    extract([src], out, command="x")
    assert memos[0].reused > 0
