"""Incremental re-extraction: reusing the cache gives byte-identical outputs to a full run."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from hpo_analysis import extract
from hpo_analysis.example import generate_example
from hpo_analysis.model import Settings
from hpo_analysis.sources import trial_json

from .conftest import write_trial

COMMAND = "hpo-analysis extract hpo"


def _outputs(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir()) if p.is_file()}


@pytest.fixture()
def counted_reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The display path of every file the per-trial reader parses (in-process runs only)."""
    seen: list[str] = []
    original = trial_json.read
    original_clean = trial_json.read_clean

    def read(path: Path, display: str, settings: Settings) -> object:
        seen.append(display)
        return original(path, display, settings)

    def read_clean(path: Path, display: str, settings: Settings) -> object:
        seen.append(display)
        return original_clean(path, display, settings)

    monkeypatch.setattr(trial_json, "read", read)
    monkeypatch.setattr(trial_json, "read_clean", read_clean)
    return seen


@pytest.fixture()
def tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1767225600")
    src = tmp_path / "hpo"
    generate_example(src, trials_per_study=4, n_diverged=3, horizons=("h1", "h3"))
    return src


def _run(src: Path, out: Path, **kwargs: object) -> None:
    result = extract([src], out, jobs=1, command=COMMAND, **kwargs)  # type: ignore[arg-type]
    assert result.validation_failures == []


def _change_tree(src: Path) -> None:
    files = sorted(src.glob("*/trials/*.json"))
    files[0].unlink()  # removed
    text = files[1].read_text(encoding="utf-8")  # modified: another state
    assert '"state": "COMPLETE"' in text
    files[1].write_text(text.replace('"state": "COMPLETE"', '"state": "PRUNED"', 1))
    data = files[2].read_bytes()  # corrupted: truncated mid-write
    files[2].write_bytes(data[: len(data) // 2])
    os.utime(files[3], ns=(1, 1))  # touched only: same content, other mtime
    write_trial(src, files[4].parent.parent.name, 999, {"trial_number": 999, "value": 0.42})
    nan_text = files[5].read_text(encoding="utf-8").replace('"value": ', '"value": NaN, "x": ', 1)
    files[5].write_text(nan_text)  # now holds a NaN token (the standard-library path)


def test_incremental_equals_full_after_changes(
    tree: Path, tmp_path: Path, counted_reads: list[str]
) -> None:
    out = tmp_path / "analysis"
    _run(tree, out)
    assert (out / ".cache" / "files.jsonl").is_file()
    first_reads = len(counted_reads)
    assert first_reads == 32

    counted_reads.clear()
    _run(tree, out)  # nothing changed: nothing parsed, same bytes
    assert counted_reads == []

    _change_tree(tree)
    counted_reads.clear()
    _run(tree, out)
    # only the modified, corrupted, touched, added and NaN files were parsed again
    assert len(counted_reads) == 5, counted_reads

    fresh = tmp_path / "fresh"
    _run(tree, fresh, cache=False)
    assert not (fresh / ".cache").exists()
    incremental, full = _outputs(out), _outputs(fresh)
    assert incremental.keys() == full.keys()
    for name in full:
        assert incremental[name] == full[name], name


def test_settings_or_version_change_invalidates_the_cache(
    tree: Path, tmp_path: Path, counted_reads: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "analysis"
    _run(tree, out)
    counted_reads.clear()
    _run(tree, out, settings=Settings(diverge_threshold=5.0))
    assert len(counted_reads) == 32

    import hpo_analysis.pipeline as pipeline

    monkeypatch.setattr(pipeline, "__version__", "99.0")
    counted_reads.clear()
    _run(tree, out, settings=Settings(diverge_threshold=5.0))
    assert len(counted_reads) == 32


def test_a_damaged_cache_is_not_trusted(
    tree: Path, tmp_path: Path, counted_reads: list[str]
) -> None:
    out = tmp_path / "analysis"
    _run(tree, out)
    reference = _outputs(out)
    blobs = out / ".cache" / "blobs.bin"
    blobs.write_bytes(blobs.read_bytes()[:1000])  # truncated
    counted_reads.clear()
    _run(tree, out)
    assert len(counted_reads) > 0
    assert _outputs(out) == reference
    (out / ".cache" / "files.jsonl").write_text("not json\n")
    counted_reads.clear()
    _run(tree, out)
    assert len(counted_reads) == 32
    assert _outputs(out) == reference


def test_same_size_and_mtime_but_other_content_is_read_again(
    tree: Path, tmp_path: Path, counted_reads: list[str]
) -> None:
    out = tmp_path / "analysis"
    _run(tree, out)
    path = sorted(tree.glob("*/trials/*.json"))[0]
    info = path.stat()
    data = path.read_bytes()
    swapped = data.replace(b'"COMPLETE"', b'"PRUNED__"', 1)
    assert len(swapped) == len(data) and swapped != data
    path.write_bytes(swapped)
    os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns))
    counted_reads.clear()
    _run(tree, out)
    assert len(counted_reads) == 1 and counted_reads[0].endswith(path.name)


def test_blob_file_is_reused_then_compacted(
    tree: Path, tmp_path: Path, counted_reads: list[str]
) -> None:
    out = tmp_path / "analysis"
    _run(tree, out)
    blobs = out / ".cache" / "blobs.bin"
    first = blobs.stat()
    files = sorted(tree.glob("*/trials/*.json"))
    text = files[0].read_text(encoding="utf-8")
    files[0].write_text(text.replace('"state": "COMPLETE"', '"state": "FAIL"', 1))
    _run(tree, out)
    second = blobs.stat()
    assert second.st_ino == first.st_ino  # linked and appended to, not rewritten
    assert second.st_size > first.st_size
    # every file changes: most of the blob file is dead, so the next run writes a new one
    for path in sorted(tree.rglob("*.json")):  # the trial files, dumps and best files
        path.write_text(path.read_text(encoding="utf-8").replace('"dropout"', '"dropout_rate"'))
    _run(tree, out)
    _run(tree, out)
    assert blobs.stat().st_ino != first.st_ino
    fresh = tmp_path / "fresh"
    _run(tree, fresh, cache=False)
    incremental, full = _outputs(out), _outputs(fresh)
    for name in full:
        assert incremental[name] == full[name], name
