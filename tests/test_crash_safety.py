"""Kill real runs at several moments: the output is always one complete set, never a mix."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hpo_analysis import validate_dir
from hpo_analysis.example import generate_example

from .conftest import made_once, read_csv, run_cli, shared_dir


@pytest.fixture(scope="session")
def trees(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """The small and the large tree, and the small tree's complete output set (report
    included), made once per test run and shared by the pytest-xdist workers: the trees are
    only read, and each kill starts from a copy of the output set (an output directory records
    nothing of its own path)."""
    root = shared_dir(tmp_path_factory, "crash_trees")
    small, large, out = root / "small", root / "large", root / "small_out" / "analysis"
    with made_once(root) as first:
        if first:
            for made in (small, large, out.parent):
                shutil.rmtree(made, ignore_errors=True)
            generate_example(small, trials_per_study=2, n_diverged=1)
            generate_example(large, trials_per_study=150, seed=1)
            assert run_cli("extract", str(small), "--out", str(out)).returncode == 0
    return small, large, out


def _manifest_paths(out: Path) -> list[str]:
    return [m["path"] for m in read_csv(out / "manifest.csv")]


@pytest.mark.slow
@pytest.mark.parametrize("delay", [0.05, 0.3, 0.6, 0.9, 1.2, 1.6])
def test_sigkill_leaves_a_complete_output_set(
    tmp_path: Path, trees: tuple[Path, Path, Path], delay: float
) -> None:
    _, large, small_out = trees
    out = tmp_path / "analysis"
    shutil.copytree(small_out, out, symlinks=True)
    assert validate_dir(out) == []
    old = _manifest_paths(out)
    proc = subprocess.Popen(
        [sys.executable, "-m", "hpo_analysis", "extract", str(large), "--out", str(out), "-q"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert validate_dir(out) == []
    now = _manifest_paths(out)
    assert now == old or (len(now) == 1800 and now[0].startswith(str(large)))
    # the next run takes over whatever the killed one left (the report is not what it checks)
    rerun = run_cli("extract", str(large), "--out", str(out), "-q", "--no-report")
    assert rerun.returncode == 0, rerun.stderr
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".analysis.staging-")]


@pytest.mark.slow
def test_concurrent_runs_do_not_interleave(tmp_path: Path, trees: tuple[Path, Path, Path]) -> None:
    small, large, _ = trees
    out = tmp_path / "analysis"
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "hpo_analysis", "extract", str(tree), "--out", str(out), "-q"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env={**os.environ},
        )
        for tree in (large, small, large)
    ]
    assert [p.wait() for p in procs] == [0, 0, 0]
    assert validate_dir(out) == []
    rows = read_csv(out / "hpo_summary.csv")
    sources = {Path(r["source_file"]).parts[-4] for r in rows}
    assert sources in ({"small"}, {"large"})
