"""The findings kept in the output's cache: reused only when every value they read is the
same, and then the outputs are the bytes of a run that computes them."""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings

from hpo_analysis import analyze, extract
from hpo_analysis.analyze import FINDINGS_INPUTS, all_findings, findings_key
from hpo_analysis.cache import (
    CACHE_DIR,
    FINDINGS_FILE,
    RUN_FILE,
    cached_findings,
    keep_findings,
)
from hpo_analysis.derive import assign_ranks
from hpo_analysis.example import generate_example
from hpo_analysis.jsonio import dumps_lossless, dumps_strict
from hpo_analysis.model import Settings

from .test_analyze import _example_rows, rows_strategy


class _Recording(dict):  # type: ignore[type-arg]
    """A row that notes every key read from it, and fails on a walk over all of them."""

    read: set[str] = set()

    def __getitem__(self, key: str) -> Any:
        self.read.add(key)
        return super().__getitem__(key)

    def get(self, key: str, default: Any = None) -> Any:
        self.read.add(key)
        return super().get(key, default)

    def __contains__(self, key: object) -> bool:
        self.read.add(str(key))
        return super().__contains__(key)

    def _everything(self, *args: Any) -> Any:
        raise AssertionError("the findings walked over every value of a row")

    keys = values = items = __iter__ = copy = _everything  # type: ignore[assignment]


def test_the_findings_read_only_their_inputs() -> None:
    rows = _example_rows()
    assign_ranks(rows)
    recording = [_Recording(row) for row in rows]
    _Recording.read = set()
    assert [f.to_dict() for f in all_findings(recording, 5)] == [  # type: ignore[arg-type]
        f.to_dict() for f in all_findings(rows, 5)
    ]
    assert _Recording.read - set(FINDINGS_INPUTS) == set()
    assert {"objective", "study", "budget", "d_model"} <= _Recording.read  # it records


def test_the_key_is_of_the_values_read() -> None:
    rows = _example_rows()
    assign_ranks(rows)
    key = findings_key(rows, 5)
    assert key is not None and findings_key(copy.deepcopy(rows), 5) == key  # not the objects
    assert findings_key(rows, 6) != key
    other = [dict(r) for r in rows]
    for r in other:
        r["note"] = "not read by the findings"
    assert findings_key(other, 5) == key
    changes: list[tuple[str, Any]] = [
        ("objective", 0.5),
        ("d_model", 64.0),  # same number, another type
        ("diverged", None),
        ("lr", math.nan),
        ("rank_in_study", None),
    ]
    for name, value in changes:
        changed = [dict(r) for r in rows]
        changed[7][name] = value if changed[7].get(name) != value else None
        assert findings_key(changed, 5) != key, name
    assert findings_key([{"objective": math.nan}], 5) != findings_key([{"objective": None}], 5)
    assert findings_key([{"study": object()}], 5) is None  # no exact encoding: nothing reused


def _encoded(findings: list[Any]) -> list[tuple[bytes, str]]:
    return [(dumps_lossless(f.to_dict()), dumps_strict(f.to_dict())) for f in findings]


@settings(max_examples=40, deadline=None)
@given(rows_strategy)
def test_kept_findings_read_back_as_they_were(rows: list[dict[str, Any]]) -> None:
    import tempfile

    assign_ranks(rows)
    findings = all_findings(rows, 3)
    with tempfile.TemporaryDirectory() as name:
        out = Path(name)
        (out / CACHE_DIR).mkdir()
        keep_findings(out / CACHE_DIR, "k", findings)
        back = cached_findings(out, "k")
        assert back is not None
        assert _encoded(back) == _encoded(findings)
        assert cached_findings(out, "another key") is None


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_a_second_run_reuses_the_findings_with_the_same_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1767225600")
    tree = tmp_path / "hpo"
    generate_example(tree, budgets=("2M", "2B"), horizons=("h1", "h3"), trials_per_study=30)
    out = tmp_path / "analysis"
    run = Settings(write_report=True)
    extract([tree], out, run)
    first = _files(out)
    assert FINDINGS_FILE in {Path(p).name for p in first}

    def computed(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the findings were computed again")

    # without the record of the run, which would keep the whole output set as it is
    (out / CACHE_DIR / RUN_FILE).unlink()
    with monkeypatch.context() as patch:
        patch.setattr(analyze, "all_findings", computed)
        extract([tree], out, run)
    # the same outputs and the same kept findings (the file index and the run's record note
    # which inputs have settled since, so they may differ)
    assert _files(out).keys() == first.keys()
    noted = ("files.jsonl", RUN_FILE)
    assert {k: v for k, v in _files(out).items() if not k.endswith(noted)} == {
        k: v for k, v in first.items() if not k.endswith(noted)
    }

    # a value the findings read changes: computed again, and equal to a run without a cache
    trial = sorted(tree.glob("*/trials/*.json"))[0]
    trial.write_bytes(trial.read_bytes().replace(b'"COMPLETE"', b'"PRUNED"', 1))
    run = Settings()  # (the report's bytes with reused findings are checked above)
    extract([tree], out, run)
    fresh = tmp_path / "fresh"
    extract([tree], fresh, run, cache=False)
    again = {k: v for k, v in _files(out).items() if not k.startswith(CACHE_DIR)}
    assert again == _files(fresh)
    assert again["findings.json"] != first["findings.json"]


def extracted_study(tmp_path: Path, trials: int = 20) -> tuple[Path, Path]:
    """A tree of one study of ``trials`` trials, and its output extracted with a cache."""
    tree = tmp_path / "hpo"
    generate_example(tree, budgets=("2M",), horizons=("h1",), trials_per_study=trials)
    out = tmp_path / "analysis"
    extract([tree], out, Settings(), command="extract")
    return tree, out


@pytest.mark.parametrize("damage", ["body", "key", "truncated", "not json"])
def test_a_damaged_findings_file_is_not_used(
    tmp_path: Path, damage: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1767225600")
    tree, out = extracted_study(tmp_path, trials=30)
    kept = out / CACHE_DIR / FINDINGS_FILE
    data = kept.read_bytes()
    head, _, body = data.partition(b"\n")
    if damage == "body":
        kept.write_bytes(head + b"\n" + body.replace(b"insufficient", b"sufficient", 1))
    elif damage == "key":
        kept.write_bytes(head.replace(b'"key":"', b'"key":"0', 1) + b"\n" + body)
    elif damage == "truncated":
        kept.write_bytes(data[: len(data) // 2])
    else:
        kept.write_bytes(b"\x00\xff" + data)
    extract([tree], out, Settings())
    fresh = tmp_path / "fresh"
    extract([tree], fresh, Settings(), cache=False)
    assert (out / "findings.json").read_bytes() == (fresh / "findings.json").read_bytes()
    assert (out / "README.md").read_bytes() == (fresh / "README.md").read_bytes()
    assert kept.read_bytes() == data  # written again, whole
