"""How fast the MCP server answers on a large dataset: start-up, overview, a trial, a curve.

A chat client calls ``overview`` first; on a lab's worth of sweeps (120,000 trials in 1,200
studies of 100) it must answer in well under a second. The script generates (once, cached, as
``benchmarks/bench_extract.py`` does) a simulated tree of the ``NxS`` shape, extracts it (once,
kept beside the tree; again with ``--fresh`` or when the dataset was written by a version that
did not keep the per-study summary), then starts the service in this process and times:

- ``start-up``: importing the server module and building the server (tool definitions; no data
  is read);
- ``overview``: the first call, then the median of ``--calls`` further calls;
- ``get_trial``, ``get_curve`` (whole and downsampled to 50 points), ``compare_trials`` and a
  small ``query``: each on ``--calls`` different trials, the first call and the median.

Each figure is wall seconds and CPU seconds of this process (the machine is shared, so wall
time depends on the other jobs). This is a measurement script, not a test: run it by hand.

Usage::

    python benchmarks/bench_mcp.py --size 12000x100           # develop on the smaller shape
    python benchmarks/bench_mcp.py                            # 120000x100 (takes long once)
    python benchmarks/bench_mcp.py --size 12000x100 --calls 15 --fresh
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_extract import Size, tree_for  # noqa: E402


def timed(fn: Callable[[], Any]) -> tuple[float, float, Any]:
    """(wall seconds, CPU seconds of this process, result) of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn()
    return time.perf_counter() - wall, time.process_time() - cpu, result


def dataset_for(tree: Path, out: Path, fresh: bool) -> None:
    """Extract ``tree`` into ``out`` unless a dataset with the per-study summary is there."""
    if not fresh and (out / "manifest.csv").is_file():
        with open(out / "hpo_full.json", "rb") as handle:
            head = handle.read(1 << 20)
        if b'"best_trial"' in head:
            return
        print(f"{out}: written without the per-study summary; extracting again", flush=True)
    argv = [sys.executable, "-m", "hpo_analysis", "extract", str(tree), "--out", str(out)]
    print(f"extracting {tree} into {out} ...", file=sys.stderr, flush=True)
    started = time.perf_counter()
    subprocess.run([*argv, "-q", "--no-report", "--no-cache"], check=True)
    print(f"extract: {time.perf_counter() - started:.1f} s wall", file=sys.stderr, flush=True)


def row(name: str, first: tuple[float, float], rest: list[tuple[float, float]]) -> str:
    walls, cpus = [w for w, _ in rest], [c for _, c in rest]
    median = (
        f"{statistics.median(walls):9.4f} {statistics.median(cpus):9.4f}"
        if rest
        else f"{'-':>9} {'-':>9}"
    )
    return f"{name:<22} {first[0]:9.4f} {first[1]:9.4f}   {median}   {len(rest):>5}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="120000x100", help="NxS: N trials, S per study")
    parser.add_argument("--calls", type=int, default=9, help="timed calls after the first")
    parser.add_argument(
        "--cache",
        type=Path,
        default=Path(os.environ.get("TMPDIR", tempfile.gettempdir())) / "hpo-bench",
        help="where the generated tree and its dataset are kept",
    )
    parser.add_argument(
        "--out",
        type=Path,
        help="the extracted dataset (default: analysis-NxS beside the tree in --cache)",
    )
    parser.add_argument("--fresh", action="store_true", help="extract the tree again")
    args = parser.parse_args(argv)
    size = Size.parse(args.size)
    if size.per_study is None:
        parser.error("--size must have the NxS shape, e.g. 120000x100")
    tree = tree_for(args.cache, size)
    out = args.out or args.cache / f"analysis-{size.key}"
    dataset_for(tree, out, args.fresh)

    import_wall, import_cpu, mcp_server = timed(
        lambda: __import__("hpo_analysis.mcp_server", fromlist=["DatasetService"])
    )
    try:  # the MCP SDK is imported by build_server: its import counts as start-up
        build_wall, build_cpu, _ = timed(lambda: mcp_server.build_server(out))
    except ImportError:
        build_wall, build_cpu = 0.0, 0.0
        print("(mcp not installed: start-up is the import alone)")
    service = mcp_server.DatasetService(out)

    def pairs(fn: Callable[[int], Any]) -> tuple[tuple[float, float], list[tuple[float, float]]]:
        first_wall, first_cpu, _ = timed(lambda: fn(0))
        rest = []
        for i in range(1, args.calls + 1):
            wall, cpu, _ = timed(lambda i=i: fn(i))
            rest.append((wall, cpu))
        return (first_wall, first_cpu), rest

    overview = pairs(lambda _: service.overview())
    n_studies = service.overview()["n_studies"]
    studies = sorted(e["study"] for e in service.dataset.study_summaries()["studies"])
    per_study = size.per_study

    def trial_at(i: int) -> tuple[str, int]:
        # spread over the dataset: a different study and trial each call
        study = studies[(i * 7919) % len(studies)]
        numbers = service.dataset.trial_numbers(study)
        return study, numbers[(i * 31) % len(numbers)]

    trial = pairs(lambda i: service.trial(*trial_at(i)))
    curve = pairs(lambda i: service.curve(*trial_at(i)))
    curve_50 = pairs(lambda i: service.curve(*trial_at(i), 50))
    compare = pairs(
        lambda i: service.compare([f"{s}/{n}" for s, n in (trial_at(i), trial_at(i + 1))])
    )
    query = pairs(
        lambda i: service.query(
            f"SELECT trial_num, objective FROM trials WHERE study = '{trial_at(i)[0]}' "
            "ORDER BY objective LIMIT 5"
        )
    )

    size_bytes = len(json.dumps(service.overview()))
    print(
        f"\nMCP service on {out} ({size.trials:,} trials, {n_studies:,} studies of "
        f"{per_study}); {args.calls} timed calls after the first"
    )
    print(
        f"start-up: {import_wall + build_wall:.3f} s wall ({import_cpu + build_cpu:.3f} s CPU): "
        f"import {import_wall:.3f} s, build_server (MCP SDK, tools) {build_wall:.3f} s"
    )
    print(f"overview response: {size_bytes:,} bytes\n")
    print(f"{'call':<22} {'first':>9} {'':>9}   {'median':>9} {'':>9}   {'calls':>5}")
    print(f"{'':<22} {'wall s':>9} {'CPU s':>9}   {'wall s':>9} {'CPU s':>9}")
    for name, (first, rest) in (
        ("overview", overview),
        ("get_trial", trial),
        ("get_curve", curve),
        ("get_curve (50 points)", curve_50),
        ("compare_trials (2)", compare),
        ("query (one study)", query),
    ):
        print(row(name, first, rest))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
