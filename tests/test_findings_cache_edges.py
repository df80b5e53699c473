"""Edges of the findings kept in the output's cache: values whose encoding does not tell apart
what the findings tell apart, and kept files that cannot be parsed at all."""

from __future__ import annotations

import math
import os
import threading
from pathlib import Path
from typing import Any

import pytest

from hpo_analysis import extract
from hpo_analysis.analyze import all_findings, findings_key
from hpo_analysis.cache import (
    BLOB_FILE,
    CACHE_DIR,
    FINDINGS_FILE,
    INDEX_FILE,
    RUN_FILE,
    cached_findings,
)
from hpo_analysis.model import Settings

from .test_findings_cache import extracted_study


def _trial(study: Any, trial_num: int) -> dict[str, Any]:
    return {
        "study": study,
        "trial_num": trial_num,
        "state": "COMPLETE",
        "objective": 1.0,
        "direction": "minimize",
        "rank_in_study": 1,
    }


@pytest.mark.parametrize("column", ["study", "budget", "horizon", "direction"])
def test_the_key_tells_apart_nan_objects_the_findings_tell_apart(column: str) -> None:
    # one NaN object twice groups as one value, two NaN objects as two (dict keys and sets
    # compare by identity first), but both pickle alike: such rows must not share a key
    nan, other = float("nan"), float("nan")
    same = [_trial("s", 0), _trial("s", 1)]
    apart = [_trial("s", 0), _trial("s", 1)]
    same[0][column] = same[1][column] = nan
    apart[0][column], apart[1][column] = nan, other
    if column == "study":
        assert all_findings(same, 5)[0].rows != all_findings(apart, 5)[0].rows
    key = findings_key(same, 5)
    assert key is None or key != findings_key(apart, 5)


def test_the_key_still_holds_for_the_values_rows_carry() -> None:
    rows = [_trial("s", 0), {**_trial("s", 1), "objective": math.nan, "diverged": True}]
    rows[0].update(budget="2M", horizon="h1", diverged=False, early_stopped=None, lr=-0.0)
    assert findings_key(rows, 5) is not None


@pytest.mark.parametrize(
    "content",
    [b"[" * 100_000 + b"\n", b'{"a":' * 100_000 + b"\n"],
    ids=["array", "object"],
)
def test_a_findings_file_nested_too_deep_is_not_used(tmp_path: Path, content: bytes) -> None:
    (tmp_path / CACHE_DIR).mkdir()
    (tmp_path / CACHE_DIR / FINDINGS_FILE).write_bytes(content)
    assert cached_findings(tmp_path, "key") is None


def _outputs(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in root.rglob("*")
        if p.is_file() and not p.relative_to(root).as_posix().startswith(CACHE_DIR)
    }


@pytest.mark.parametrize("name", [FINDINGS_FILE, INDEX_FILE, RUN_FILE])
def test_a_cache_file_nested_too_deep_gives_a_full_run(
    tmp_path: Path, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1767225600")
    tree, out = extracted_study(tmp_path)
    computed = _outputs(out)
    kept = out / CACHE_DIR / name
    kept.write_bytes(b"[" * 100_000 + b"\n" + kept.read_bytes().partition(b"\n")[2])
    if name != RUN_FILE:  # a run that reads the damaged file, not one that keeps the set
        (out / CACHE_DIR / RUN_FILE).unlink()
    extract([tree], out, Settings(), command="extract")
    assert _outputs(out) == computed


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")
@pytest.mark.parametrize("name", [FINDINGS_FILE, INDEX_FILE, BLOB_FILE, RUN_FILE])
def test_a_named_pipe_in_the_cache_does_not_block_the_run(
    tmp_path: Path, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1767225600")
    tree, out = extracted_study(tmp_path)
    pipe = out / CACHE_DIR / name
    pipe.unlink()
    os.mkfifo(pipe)
    run = threading.Thread(target=extract, args=([tree], out, Settings()), daemon=True)
    run.start()
    run.join(60)
    if run.is_alive():  # blocked on the pipe: let it go (a writer opens it), then fail
        os.close(os.open(pipe, os.O_WRONLY | os.O_NONBLOCK))
        run.join(60)
        pytest.fail(f"extract blocked on a named pipe at .cache/{name}")
    assert pipe.is_file()  # the new cache replaced it
    fresh = tmp_path / "fresh"
    extract([tree], fresh, Settings())
    assert (out / "findings.json").read_bytes() == (fresh / "findings.json").read_bytes()
