"""Incremental re-extraction: reusing the cache gives byte-identical outputs to a full run."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from hpo_analysis import cache, extract
from hpo_analysis.example import generate_example
from hpo_analysis.model import Settings
from hpo_analysis.sources import trial_json

from .conftest import rewrite_same_size_keeping_mtime, write_trial

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
    _run(tree, out)  # nothing changed: the output set is kept, the blob file not needed
    assert counted_reads == []
    assert _outputs(out) == reference
    (out / ".cache" / "run.json").unlink()  # a run that takes the trials from the cache
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
    rewrite_same_size_keeping_mtime(path)
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
    files[1].write_text(files[1].read_text(encoding="utf-8").replace('"COMPLETE"', '"FAIL"', 1))
    _run(tree, out)
    assert blobs.stat().st_ino != first.st_ino
    fresh = tmp_path / "fresh"
    _run(tree, fresh, cache=False)
    incremental, full = _outputs(out), _outputs(fresh)
    for name in full:
        assert incremental[name] == full[name], name


@pytest.fixture()
def settled(monkeypatch: pytest.MonkeyPatch) -> None:
    """No racy window: files written before a run count as settled for the next run (the
    changes these tests make come well after the run that recorded the stat)."""
    monkeypatch.setattr(cache, "RACY_WINDOW_NS", 0)


def _cached_paths(out: Path) -> int:
    return len((out / ".cache" / "files.jsonl").read_text(encoding="utf-8").splitlines()) - 1


def _assert_same_as_full(tree: Path, out: Path, tmp_path: Path) -> None:
    fresh = tmp_path / "fresh"
    _run(tree, fresh, cache=False)
    incremental, full = _outputs(out), _outputs(fresh)
    assert incremental.keys() == full.keys()
    for name in full:
        assert incremental[name] == full[name], name


def test_untouched_files_are_not_hashed_again(
    tree: Path,
    tmp_path: Path,
    counted_reads: list[str],
    counted_hashes: list[str],
    settled: None,
) -> None:
    out = tmp_path / "analysis"
    _run(tree, out)
    reference = _outputs(out)
    counted_reads.clear()
    _run(tree, out)  # nothing changed: the output set is kept
    assert counted_reads == [] and counted_hashes == []
    assert _outputs(out) == reference
    # runs that take every file from the cache: without the record that keeps the set
    (out / ".cache" / "run.json").unlink()
    _run(tree, out)
    assert counted_reads == [] and counted_hashes == []
    assert _outputs(out) == reference
    # the carried-over keys prove the files unchanged again on the run after
    (out / ".cache" / "run.json").unlink()
    _run(tree, out)
    assert counted_reads == [] and counted_hashes == []
    assert _outputs(out) == reference


def test_one_percent_changed_reads_only_those(
    tree: Path,
    tmp_path: Path,
    counted_reads: list[str],
    counted_hashes: list[str],
    settled: None,
) -> None:
    """The benchmark's change (another state in some trial files): those files are read again
    (their size differs, so nothing is hashed), the others are reused by their stat."""
    out = tmp_path / "analysis"
    _run(tree, out)
    changed = sorted(tree.glob("*/trials/*.json"))[::10]
    for path in changed:
        data = path.read_bytes()
        path.write_bytes(data.replace(b'"state": "COMPLETE"', b'"state": "PRUNED"', 1))
    counted_reads.clear()
    _run(tree, out)
    assert sorted(Path(d).name for d in counted_reads) == sorted(p.name for p in changed)
    assert counted_hashes == []
    _assert_same_as_full(tree, out, tmp_path)


def test_same_size_rewrite_with_mtime_set_back_is_read_again(
    tree: Path,
    tmp_path: Path,
    counted_reads: list[str],
    counted_hashes: list[str],
    settled: None,
) -> None:
    out = tmp_path / "analysis"
    _run(tree, out)
    path = sorted(tree.glob("*/trials/*.json"))[0]
    info = rewrite_same_size_keeping_mtime(path)
    after = path.stat()
    assert (after.st_size, after.st_mtime_ns, after.st_ino) == (
        info.st_size,
        info.st_mtime_ns,
        info.st_ino,
    )
    assert after.st_ctime_ns != info.st_ctime_ns  # only the ctime tells
    counted_reads.clear()
    _run(tree, out)
    assert counted_hashes == [path.name]
    assert len(counted_reads) == 1 and counted_reads[0].endswith(path.name)
    _assert_same_as_full(tree, out, tmp_path)


@pytest.mark.parametrize("same_content", [False, True])
def test_a_file_replaced_by_another_is_hashed_again(
    tree: Path,
    tmp_path: Path,
    counted_reads: list[str],
    counted_hashes: list[str],
    settled: None,
    same_content: bool,
) -> None:
    """Renamed over by another file (another inode) of the same size and mtime: hashed, and
    read again unless the contents are the same."""
    out = tmp_path / "analysis"
    _run(tree, out)
    path = sorted(tree.glob("*/trials/*.json"))[1]
    info = path.stat()
    data = path.read_bytes()
    if not same_content:
        data = data.replace(b'"COMPLETE"', b'"PRUNED__"', 1)
    other = tmp_path / "replacement.json"
    other.write_bytes(data)
    os.utime(other, ns=(info.st_atime_ns, info.st_mtime_ns))
    os.replace(other, path)
    assert path.stat().st_ino != info.st_ino
    counted_reads.clear()
    _run(tree, out)
    assert counted_hashes == [path.name]
    assert [Path(d).name for d in counted_reads] == ([] if same_content else [path.name])
    _assert_same_as_full(tree, out, tmp_path)


@pytest.mark.parametrize("mtime_set_back", [False, True])
def test_files_changed_just_before_a_run_are_hashed_by_the_next(
    tree: Path,
    tmp_path: Path,
    counted_reads: list[str],
    counted_hashes: list[str],
    mtime_set_back: bool,
) -> None:
    """The racy case: the tree was written moments before the first run, within the racy
    window of its start, so its stat proves nothing and the next run hashes every file; the
    ctime tells even when the mtimes were set back to long ago."""
    if mtime_set_back:
        for path in tree.rglob("*.json"):
            os.utime(path, ns=(10**18, 10**18))
    out = tmp_path / "analysis"
    _run(tree, out)
    counted_reads.clear()
    _run(tree, out)
    assert counted_reads == []
    assert len(counted_hashes) == _cached_paths(out) > 0


def test_a_file_with_an_mtime_after_the_run_start_is_hashed(
    tree: Path,
    tmp_path: Path,
    counted_reads: list[str],
    counted_hashes: list[str],
    settled: None,
) -> None:
    """A file whose mtime is not before the start of the run that recorded it (here set into
    the future) is racy: hashed on every run, even with its stat unchanged."""
    path = sorted(tree.glob("*/trials/*.json"))[2]
    future = path.stat().st_mtime_ns + 10**18
    os.utime(path, ns=(future, future))
    out = tmp_path / "analysis"
    _run(tree, out)
    for _ in range(2):
        counted_reads.clear()
        counted_hashes.clear()
        _run(tree, out)
        assert counted_reads == []
        assert counted_hashes == [path.name]


def test_an_older_cache_format_is_not_used(
    tree: Path, tmp_path: Path, counted_reads: list[str], settled: None
) -> None:
    out = tmp_path / "analysis"
    _run(tree, out)
    index = out / ".cache" / "files.jsonl"
    lines = index.read_bytes().split(b"\n")
    lines[0] = lines[0].replace(
        b'"format":%d' % cache.CACHE_FORMAT, b'"format":%d' % (cache.CACHE_FORMAT - 1)
    )
    assert lines[0] != index.read_bytes().split(b"\n")[0]
    index.write_bytes(b"\n".join(lines))
    (out / ".cache" / "run.json").unlink()  # a run through the index, not one keeping the set
    counted_reads.clear()
    _run(tree, out)
    assert len(counted_reads) == 32


def _wait_for_next_tick(scratch: Path, after_ns: int) -> int:
    """Wait until the file system's own clock is past ``after_ns``: every change from now on
    sets a later ctime. Returns that clock's time."""
    while True:
        scratch.write_bytes(b"tick")
        ctime = scratch.stat().st_ctime_ns
        if ctime > after_ns:
            return ctime


_EDITS = st.lists(
    st.sampled_from(
        ["rewrite_same", "rewrite_other", "append", "restore_mtime", "replace", "chmod", "touch"]
    ),
    max_size=4,
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(edits=_EDITS, settled=st.booleans())
def test_stat_proof_agrees_with_hashing(tmp_path: Path, edits: list[str], settled: bool) -> None:
    """Whatever is done to a file after its stat was recorded, the check that may skip the
    hash decides as the check that always hashes (size, mtime and sha256 unchanged). Settled:
    the file system's clock has passed the recorded ctime before any edit; racy: the edits may
    fall within the same timestamp tick."""
    path = tmp_path / "trial.json"
    path.write_bytes(b'{"state": "COMPLETE", "value": 0.5}')
    os.utime(path, ns=(10**18, 10**18))
    info = os.stat(path)
    if settled:
        _wait_for_next_tick(tmp_path / "scratch", info.st_ctime_ns)
    key = cache.FileKey("trial_json", cache.Stamp.of(info), cache.sha256_of(path) or "", settled)
    for edit in edits:
        if edit == "rewrite_same":
            path.write_bytes(path.read_bytes())
        elif edit == "rewrite_other":
            path.write_bytes(path.read_bytes().replace(b"0.5", b"0.7"))
        elif edit == "append":
            path.write_bytes(path.read_bytes() + b" ")
        elif edit == "restore_mtime":
            os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns))
        elif edit == "replace":
            (tmp_path / "other").write_bytes(path.read_bytes())
            os.utime(tmp_path / "other", ns=(info.st_atime_ns, info.st_mtime_ns))
            os.replace(tmp_path / "other", path)
        elif edit == "chmod":
            os.chmod(path, 0o600 if os.stat(path).st_mode & 0o044 else 0o644)
        else:
            os.utime(path)
    stamp = cache.stamp_of(path)
    assert stamp is not None
    careful = (stamp.size, stamp.mtime_ns) == (
        key.stamp.size,
        key.stamp.mtime_ns,
    ) and cache.sha256_of(path) == key.sha256
    assert cache.unchanged(path, key, stamp) == careful
    if settled and not edits:  # proven by the stat alone: not hashed
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(cache, "sha256_of", lambda p: pytest.fail(f"{p} hashed"))
            assert cache.unchanged(path, key, stamp)


@pytest.mark.parametrize("field", ["ctime_ns", "inode", "device"])
def test_a_stat_differing_in_any_field_is_not_proof(
    tmp_path: Path, counted_hashes: list[str], field: str
) -> None:
    """Size and mtime equal, settled long ago, but ctime, inode or device differ (another
    file at the path, e.g. on another mount): the contents decide."""
    path = tmp_path / "trial.json"
    path.write_bytes(b'{"state": "COMPLETE"}')
    stamp = cache.stamp_of(path)
    assert stamp is not None
    recorded = stamp._replace(**{field: getattr(stamp, field) + 1})
    same = cache.FileKey("trial_json", recorded, cache.sha256_of(path) or "", settled=True)
    other = cache.FileKey("trial_json", recorded, "0" * 64, settled=True)
    counted_hashes.clear()
    assert cache.unchanged(path, same, stamp)
    assert not cache.unchanged(path, other, stamp)
    assert counted_hashes == [path.name, path.name]
    # the same stat, settled: proof without hashing (even of a wrong recorded hash)
    proof = cache.FileKey("trial_json", stamp, "0" * 64, settled=True)
    assert cache.unchanged(path, proof, stamp)
    assert counted_hashes == [path.name, path.name]
    # the same stat, racy: hashed
    assert not cache.unchanged(path, cache.FileKey("trial_json", stamp, "0" * 64), stamp)
    assert counted_hashes == [path.name] * 3


# --- the previous index, kept compact ---------------------------------------------------------


def _index_as_parsed(items: list[dict[str, object]]) -> dict[str, cache.CachedFile]:
    """The definition of the index as the run reads it: one CachedFile of Python values a path
    (a later line of a path replaces an earlier one)."""
    files: dict[str, cache.CachedFile] = {}
    shared: dict[tuple[str, ...], list[str]] = {}
    for item in items:
        files[item["path"]] = cache.CachedFile(  # type: ignore[index]
            cache.FileKey(
                item["reader"],  # type: ignore[arg-type]
                cache.Stamp(
                    item["size"],  # type: ignore[arg-type]
                    item["mtime_ns"],  # type: ignore[arg-type]
                    item["ctime_ns"],  # type: ignore[arg-type]
                    item["inode"],  # type: ignore[arg-type]
                    item["device"],  # type: ignore[arg-type]
                ),
                item["sha256"],  # type: ignore[arg-type]
                item["settled"] is True,
                str(item["depends"]),
            ),
            [cache.Problem(c, m, v) for c, m, v in item["problems"]],  # type: ignore[attr-defined]
            [(e[0], e[1], e[2], e[3]) for e in item["entries"]],  # type: ignore[attr-defined]
            [shared.setdefault(tuple(e[4]), list(e[4])) for e in item["entries"]],  # type: ignore[attr-defined]
        )
    return files


_SHA = st.one_of(
    st.binary(min_size=32, max_size=32).map(bytes.hex),
    st.sampled_from(["", "A" * 64, "0" * 63, "xyz", "g" * 64]),
    st.none(),
)
_INTEGER = st.one_of(
    st.integers(-(2**63), 2**63 - 1), st.integers(), st.sampled_from([1.5, "7", None, True])
)
_LOCATION = st.tuples(
    st.integers(0, 2**40), st.integers(0, 4000), st.integers(0, 4000), st.integers(0, 4000)
)
_NEGATIVE_LOCATION = st.tuples(
    st.integers(-(2**63), 2**40), st.integers(-4000, 4000), st.integers(0, 9), st.integers(0, 9)
)
_ENTRY = _LOCATION.flatmap(
    lambda loc: st.sampled_from([["val_loss"], ["train_loss", "val_loss"], []]).map(
        lambda names: [*loc, names]
    )
)
_DAMAGED_ENTRY = st.one_of(
    st.lists(_INTEGER, min_size=4, max_size=4).map(lambda loc: [*loc, ["m"]]),
    st.just([1, 2, 3, 4, "ab"]),
    st.just([1, 2, 3, 4, ["m"], "extra"]),
    _NEGATIVE_LOCATION.map(lambda loc: [*loc, ["m"]]),
)


@st.composite
def _index_items(draw: st.DrawFn) -> list[dict[str, object]]:
    """Index lines over a few paths (so that paths repeat): mostly usual ones, some with
    problems, a dependency digest or a sha256 of another form, now and then a damaged one."""
    items = []
    for _ in range(draw(st.integers(0, 8))):
        # (a damaged stat and a damaged entry drawn apart: either alone makes a line unusable)
        integer = _INTEGER if draw(st.integers(0, 15)) == 0 else st.integers(0, 2**62)
        entry = st.one_of(_ENTRY, _DAMAGED_ENTRY) if draw(st.integers(0, 7)) == 0 else _ENTRY
        items.append(
            {
                "path": draw(st.sampled_from(["a.json", "b.json", "s/c.json", "d.db"])),
                "reader": draw(st.sampled_from(["trial_json", "study_dump", "optuna_storage"])),
                "size": draw(integer),
                "mtime_ns": draw(integer),
                "ctime_ns": draw(integer),
                "inode": draw(integer),
                "device": draw(integer),
                "settled": draw(st.sampled_from([True, False, 1, None])),
                "sha256": draw(_SHA),
                "depends": draw(st.sampled_from(["", "", "ab" * 32, 0])),
                "problems": draw(
                    st.sampled_from([[], [], [["code", "message", "warning"]], "", None, 0])
                ),
                "entries": draw(st.lists(entry, max_size=3)),
            }
        )
    return items


def _line(path: str = "a.json", **fields: object) -> dict[str, object]:
    line: dict[str, object] = {
        "path": path,
        "reader": "trial_json",
        **dict.fromkeys(("size", "mtime_ns", "ctime_ns", "inode", "device"), 7),
        "settled": True,
        "sha256": "ab" * 32,
        "depends": "",
        "problems": [],
        "entries": [[0, 10, 20, 30, ["val_loss"]]],
    }
    return {**line, **fields}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_index_items())
@example([_line(), _line(depends="x" * 64)])  # a compact line, then an odd one of its path
@example([_line(depends="x" * 64), _line(size=9)])  # and the other way round
@example([_line(), _line(entries=[[-1, 10, 20, 30, ["m"]]])])  # a negative offset
@example([_line(problems=None)])
@example([_line(problems="")])
def test_the_compact_index_answers_as_the_parsed_one(items: list[dict[str, object]]) -> None:
    """Every path's key, problems, blob locations and metric names, and the live bytes of the
    blob file, as one CachedFile of Python values a path gives them: usual lines, lines of
    other types or out of range, repeated paths, problems and dependency digests."""
    try:
        expected = _index_as_parsed(items)
    except TypeError:  # (problems that are not a list of triples: an index not used)
        expected = None
    index = cache._Index()
    usable = expected is not None and all(_usable_line(item) for item in items)
    try:
        for item in items:
            index.add(item)
    except (ValueError, TypeError):
        assert not usable
        return
    assert usable and expected is not None
    for path in ["a.json", "b.json", "s/c.json", "d.db", "absent"]:
        want = expected.get(path)
        assert index.key(path) == (want.key if want else None)
        if want is None:
            with pytest.raises(KeyError):
                index[path]
            continue
        got = index[path]
        assert (got.key, got.problems, got.entries, got.metrics) == (
            want.key,
            want.problems,
            want.entries,
            want.metrics,
        )
        assert [type(v) for e in got.entries for v in e] == [
            type(v) for e in want.entries for v in e
        ]
        assert type(got.key.stamp.size) is type(want.key.stamp.size)
    live = sum(r + f + c for item in expected.values() for _, r, f, c in item.entries)
    assert index.live_bytes() == live


def _usable_line(item: dict[str, object]) -> bool:
    """A line whose stat is 64-bit integers and whose entries are (offset, lengths, metric
    names) of 64-bit integers of at least 0; any other index is damaged and not used."""

    def machine(v: object) -> bool:
        return type(v) is int and -(2**63) <= v < 2**63

    stat = [item[k] for k in ("size", "mtime_ns", "ctime_ns", "inode", "device")]
    entries = item["entries"]
    return (
        all(map(machine, stat))
        and isinstance(entries, list)
        and all(
            isinstance(e, list)
            and len(e) == 5
            and all(map(machine, e[:4]))
            and min(e[:4]) >= 0
            and isinstance(e[4], list)
            and all(isinstance(n, str) for n in e[4])
            for e in entries
        )
    )
