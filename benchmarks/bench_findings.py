"""CPU seconds of the analysis stage (``analyze.all_findings``) at many trials and studies.

The findings are computed from the rows the pipeline builds. For each size this script
generates a tree as ``bench_extract.py`` does (``N``: 12 studies; ``NxS``: N/S studies of S
trials, 4 budgets x N/(4S) horizons), extracts it once in-process while keeping the rows
``all_findings`` receives (pickled next to the tree, so later runs skip both steps), and then
times ``all_findings`` on those rows in a fresh process, ``--runs`` times. With
``--before SRC`` the same timing runs with another checkout's ``src`` first on ``PYTHONPATH``,
side by side, and the two lists of findings are compared. With ``--each`` the CPU seconds of
each finding (and of the trial frame) are printed too, medians over the runs, to see which
findings the time goes to.

CPU seconds are the process's user + system time around the call (``time.process_time``),
which on a shared machine is steadier than wall time; medians are reported. With
``--profile`` the first run of each size prints the 25 most expensive functions.
This is a measurement script, not a test: run it by hand.

Usage::

    python benchmarks/bench_findings.py --sizes 12000,12000x100 --runs 3
    python benchmarks/bench_findings.py --sizes 120000x100 --runs 1 --before /tmp/old/src
    python benchmarks/bench_findings.py --sizes 600,12000 --runs 5 --each
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SRC = HERE.parent / "src"
sys.path.insert(0, str(HERE))

from bench_extract import Size, tree_for  # noqa: E402

# Run in a child process: load the pickled rows, time all_findings, print JSON.
CHILD = r"""
import cProfile, functools, io, json, pickle, pstats, sys, time
from hpo_analysis import analyze
from hpo_analysis.analyze import horizon
with open(sys.argv[1], "rb") as handle:
    rows = pickle.load(handle)
each = {}
if sys.argv[3] == "each":  # every function _findings calls, timed where it is looked up
    def timed(function):
        @functools.wraps(function)
        def call(*args, **kwargs):
            start = time.process_time()
            try:
                return function(*args, **kwargs)
            finally:
                name = function.__name__
                each[name] = each.get(name, 0.0) + time.process_time() - start
        return call
    names = [n for n in analyze.__all__ if n.islower() and not n.startswith("_")]
    for name in names + ["trial_frame"]:
        if callable(getattr(analyze, name)) and name != "all_findings":
            setattr(analyze, name, timed(getattr(analyze, name)))
    horizon.transfer_findings = timed(horizon.transfer_findings)
profile = cProfile.Profile() if sys.argv[2] == "profile" else None
start = time.process_time()
if profile:
    profile.enable()
findings = analyze.all_findings(rows)
if profile:
    profile.disable()
cpu = time.process_time() - start
text = ""
if profile:
    out = io.StringIO()
    pstats.Stats(profile, stream=out).sort_stats("cumulative").print_stats(25)
    text = out.getvalue()
digest = json.dumps([f.to_dict() for f in findings], sort_keys=True, default=str)
print(json.dumps({"cpu": cpu, "digest": digest, "profile": text, "each": each}))
"""


def rows_for(cache: Path, size: Size) -> Path:
    """The pickled rows ``all_findings`` receives for the tree of ``size`` (made once)."""
    tree = tree_for(cache, size)
    target = cache / f"rows-{size.key}.pickle"
    if target.exists():
        return target
    sys.path.insert(0, str(SRC))
    from hpo_analysis import analyze, pipeline

    captured: list[Any] = []
    original = analyze.all_findings

    class Captured(Exception):
        """Stops the extraction once the rows are kept: the findings are what we time."""

    def keep(rows: Any, *args: Any, **kwargs: Any) -> Any:
        captured.append([dict(r) for r in rows])
        raise Captured

    analyze.all_findings = keep  # type: ignore[assignment]
    try:
        with tempfile.TemporaryDirectory(dir=cache) as out:
            print(f"extracting {size.label} ...", file=sys.stderr, flush=True)
            pipeline.extract([tree], Path(out) / "analysis", cache=False)
    except Captured:
        pass
    finally:
        analyze.all_findings = original  # type: ignore[assignment]
    with open(target.with_suffix(".tmp"), "wb") as handle:
        pickle.dump(captured[0], handle, protocol=pickle.HIGHEST_PROTOCOL)
    os.replace(target.with_suffix(".tmp"), target)
    return target


def run(src: Path, rows: Path, profile: bool, each: bool = False) -> dict[str, Any]:
    env = dict(os.environ, PYTHONPATH=str(src))
    mode = "profile" if profile else "time"
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(rows), mode, "each" if each else "all"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="12000,12000x100")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--before", type=Path, help="another checkout's src directory")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--each", action="store_true", help="time each finding too")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "hpo-bench")
    args = parser.parse_args()
    args.cache.mkdir(parents=True, exist_ok=True)
    versions = [("after", SRC)] + ([("before", args.before)] if args.before else [])
    for text in args.sizes.split(","):
        size = Size.parse(text)
        rows = rows_for(args.cache, size)
        times: dict[str, list[float]] = {name: [] for name, _ in versions}
        digests: dict[str, str] = {}
        each: dict[str, dict[str, list[float]]] = {name: {} for name, _ in versions}
        for index in range(args.runs):
            for name, src in versions:  # interleaved, so load changes hit both alike
                result = run(src, rows, args.profile and index == 0, args.each)
                times[name].append(result["cpu"])
                digests[name] = result["digest"]
                for finding, seconds in result["each"].items():
                    each[name].setdefault(finding, []).append(seconds)
                if result["profile"]:
                    print(f"--- profile {name} {size.label}\n{result['profile']}")
        if not args.runs:
            continue
        line = ", ".join(
            f"{name} {statistics.median(values):.2f} s (runs "
            + ", ".join(f"{v:.2f}" for v in values)
            + ")"
            for name, values in times.items()
        )
        same = "" if len(digests) < 2 else f"; findings equal: {len(set(digests.values())) == 1}"
        print(f"all_findings CPU seconds, {size.label} trials: {line}{same}", flush=True)
        if args.each:
            first = versions[0][0]
            medians = {
                name: {f: statistics.median(v) for f, v in found.items()}
                for name, found in each.items()
            }
            print(f"  {'CPU ms, median':32}" + "".join(f"{name:>10}" for name, _ in versions))
            for finding in sorted(medians[first], key=lambda f: -medians[first][f]):
                cells = "".join(
                    f"{1000 * medians[name].get(finding, float('nan')):10.1f}"
                    for name, _ in versions
                )
                print(f"  {finding:32}{cells}", flush=True)


if __name__ == "__main__":
    main()
