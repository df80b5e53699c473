"""The parallel reader (worker processes, from PARALLEL_MIN_FILES files up) gives the same
bytes as reading in one process, on the runner's full tree (per-trial files, dumps, best files)."""

from __future__ import annotations

from pathlib import Path

import pytest

from hpo_analysis import extract, pipeline
from hpo_analysis.example import generate_example
from hpo_analysis.model import Settings


def _files(out: Path) -> dict[str, bytes]:
    return {
        p.relative_to(out).as_posix(): p.read_bytes()
        for p in sorted(out.rglob("*"))
        if p.is_file() and ".cache" not in p.parts
    }


@pytest.mark.slow
def test_parallel_reader_equals_one_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1767225600")
    tree = tmp_path / "hpo"
    generate_example(
        tree, budgets=("2M", "2B"), horizons=("h1", "h3"), trials_per_study=40, n_diverged=6
    )
    n_files = sum(1 for p in tree.rglob("*") if p.is_file())
    serial = extract([tree], tmp_path / "out_single_qz", Settings(), jobs=1)
    monkeypatch.setattr(pipeline, "PARALLEL_MIN_FILES", 50)
    monkeypatch.setattr(pipeline, "PARALLEL_CHUNK", 16)
    pools: list[object] = []
    real_pool = pipeline.ProcessPoolExecutor

    def counted_pool(*args: object, **kwargs: object) -> object:
        pools.append(args)
        return real_pool(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(pipeline, "ProcessPoolExecutor", counted_pool)
    assert n_files >= pipeline.PARALLEL_MIN_FILES
    parallel = extract([tree], tmp_path / "out_multi_qz", Settings(), jobs=2)
    assert serial.validation_failures == parallel.validation_failures == []
    assert parallel.n_trials == 160
    assert len(pools) == 1  # the worker processes did read the files
    serial_files, parallel_files = (
        _files(tmp_path / "out_single_qz"),
        _files(tmp_path / "out_multi_qz"),
    )
    assert serial_files.keys() == parallel_files.keys()
    for name in serial_files:  # byte for byte, but for the output directory's own name
        single = serial_files[name].replace(b"out_single_qz", b"OUT")
        assert single == parallel_files[name].replace(b"out_multi_qz", b"OUT"), name


def test_outcomes_cross_the_process_boundary_unchanged(tmp_path: Path) -> None:
    """What a worker sends back (pickled, as between processes) and the parent rebuilds is the
    outcome of reading the file in the parent itself: clean files, a study dump, a file with
    warnings, a broken file, an ignored one."""
    import pickle

    from hpo_analysis.sources import discover

    tree = tmp_path / "hpo"
    generate_example(tree, budgets=("2M",), horizons=("h1",), trials_per_study=6, n_diverged=2)
    trials = sorted(tree.rglob("trial_*.json"))
    (trials[0].parent / "trial_9000.json").write_text('{"trial_num": 9000, "params": {', "utf-8")
    (trials[0].parent / "trial_9001.json").write_text(
        trials[1].read_text("utf-8").replace('"state": "COMPLETE"', '"state": "RUNNING"'), "utf-8"
    )
    (trials[0].parent / "trial_9002.json").write_text(
        '{"trial_num": 9002, "value": NaN, "state": "COMPLETE", "params": {"lr": 0.1},'
        ' "learning_curve": [{"epoch": 0, "val_loss": Infinity}], "odd": [1, 2]}',
        "utf-8",
    )
    (tree / "notes.txt").write_text("not a trial", "utf-8")
    files = list(discover(tree))
    assert {f.status for f in files} >= {"read", "ignored"}
    settings = Settings()
    for keep in (False, True):
        sent = pickle.loads(
            pickle.dumps(
                pipeline._read_chunk([pipeline._to_wire(f) for f in files], settings, keep)
            )
        )
        rebuilt = [
            pipeline._from_wire(found, wire) for found, wire in zip(files, sent, strict=True)
        ]
        direct = [pipeline._read_one(found, settings, keep) for found in files]
        # repr: NaN is not equal to itself, and a pickled NaN is another object
        assert [repr(o) for o in rebuilt] == [repr(o) for o in direct]
        assert any(o.read is not None and o.read.problems for o in direct)
        assert any(o.read is not None and o.read.rejected for o in direct)
