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
