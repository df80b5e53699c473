"""The extract benchmark's own helpers: tree shapes, the byte-for-byte check, the restore."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[1]


def _bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "bench_extract", REPO / "benchmarks" / "bench_extract.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


bench = _bench()


def test_sizes_name_both_shapes() -> None:
    wide = bench.Size.parse("12000")
    many = bench.Size.parse("120000x100")
    assert (wide.trials, wide.per_study, wide.label) == (12000, None, "12,000 (12 studies)")
    assert (many.trials, many.per_study, many.label) == (120000, 100, "120,000 (1,200 studies)")
    assert many.key == "120000x100"
    with pytest.raises(SystemExit, match="multiple of 4 x S"):
        bench.Size.parse("1000x100")  # 10 studies cannot be split over 4 budgets


def test_studies_of_s_trials_tree(tmp_path: Path) -> None:
    tree = bench.tree_for(tmp_path, bench.Size.parse("80x10"))
    studies = sorted(p.name for p in tree.iterdir() if p.is_dir())
    assert len(studies) == 8  # 4 budgets x 2 horizons
    assert {s.split("_")[2] for s in studies} == {"h1", "h2"}
    assert all(len(list((tree / s / "trials").glob("*.json"))) == 10 for s in studies)
    assert bench.tree_for(tmp_path, bench.Size.parse("80x10")) == tree  # kept, not redone


def test_same_outputs_compares_bytes_and_skips_the_cache(tmp_path: Path) -> None:
    one, other = tmp_path / "one", tmp_path / "other"
    for root in (one, other):
        (root / ".cache").mkdir(parents=True)
        (root / "a.csv").write_bytes(b"x,y\r\n1,2\r\n")
    (one / ".cache" / "rows").write_bytes(b"whatever")
    assert bench.same_outputs(one, other)
    (other / "a.csv").write_bytes(b"x,y\r\n1,3\r\n")
    assert not bench.same_outputs(one, other)
    (other / "a.csv").write_bytes(b"x,y\r\n1,2\r\n")
    (other / "b.json").write_bytes(b"{}")
    assert not bench.same_outputs(one, other)


def test_changed_files_are_restored_with_their_times(tmp_path: Path) -> None:
    tree = bench.tree_for(tmp_path, bench.Size.parse("80x10"))
    files = sorted(tree.glob("*/trials/*.json"))
    before = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in files}
    saved = bench.change_files(tree, 0.05)
    assert len(saved) == 4  # 5 % of 80 files
    assert all(p.read_bytes() != before[p][0] for p in saved)
    assert len({p.parent.parent for p in saved}) > 1  # spread over the studies
    bench.restore(saved)
    assert {p: (p.read_bytes(), os.stat(p).st_mtime_ns) for p in files} == before
    saved = bench.change_files(tree, 0.05, one_study=True)
    assert len(saved) == 4 and len({p.parent.parent for p in saved}) == 1
    assert all(p.read_bytes() != before[p][0] for p in saved)
    bench.restore(saved)
    assert {p: (p.read_bytes(), os.stat(p).st_mtime_ns) for p in files} == before


def test_compile_tools_compiles_both_versions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = tmp_path / "src"
    (before / "hpo_analysis").mkdir(parents=True)
    (before / "hpo_analysis" / "stage.py").write_text("X = 1\n", "utf-8")
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")
    compiled = bench.compile_tools(before)
    assert "PYTHONDONTWRITEBYTECODE" not in os.environ
    assert compiled[-1] == str(before / "hpo_analysis")
    assert list((before / "hpo_analysis" / "__pycache__").glob("stage.*.pyc"))
    assert Path(compiled[0], "__init__.py").is_file()  # the tool's own package


def test_the_report_runs_are_the_command_a_user_types(tmp_path: Path) -> None:
    plain = bench.extract_argv(tmp_path, tmp_path / "out", cache=False)
    typed = bench.extract_argv(tmp_path, tmp_path / "out", cache=True, report=True)
    assert "--no-report" in plain and "--no-cache" in plain
    assert "--no-report" not in typed and "--no-cache" not in typed
    row: dict[str, object] = {"label": "600 (12 studies)"}
    for kind, cpu in (("baseline", 1.0), ("extract", 2.0), ("parse", 0.5), ("report", 4.0)):
        row |= {f"{kind}_s": cpu, f"{kind}_cpu_s": cpu, f"{kind}_peak_mb": 1.0}
    row["extract_peak_sum_mb"] = 1.0
    head, _, line = bench.table([row]).splitlines()
    assert head.endswith("| re-run, nothing changed s (CPU) | extract + report s (CPU) |")
    assert line.endswith("| not run | not run | 4.00 (4.00) |")


def test_a_tree_left_changed_is_refused(tmp_path: Path) -> None:
    tree = bench.tree_for(tmp_path, bench.Size.parse("80x10"))
    saved = bench.change_files(tree, 0.05)
    with pytest.raises(SystemExit, match="no COMPLETE state to change"):
        bench.change_files(tree, 0.05)  # the same files again: nothing left to change
    bench.restore(saved)
    assert len(bench.change_files(tree, 0.05)) == 4
