"""CPU seconds of the analysis stage (``analyze.all_findings``) at many trials and studies.

The findings are computed from the rows the pipeline builds. For each size this script
generates a tree as ``bench_extract.py`` does (``N``: 12 studies; ``NxS``: N/S studies of S
trials, 4 budgets x N/(4S) horizons), extracts it once in-process while keeping the rows
``all_findings`` receives (pickled next to the tree, so later runs skip both steps), and then
times ``all_findings`` on those rows in a fresh process, ``--runs`` times. With
``--before SRC`` the same timing runs with another checkout's ``src`` first on ``PYTHONPATH``,
side by side, and the two lists of findings are compared.

CPU seconds are the process's user + system time around the call (``time.process_time``),
which on a shared machine is steadier than wall time; medians are reported. With
``--profile`` the first run of each size prints the 25 most expensive functions.
This is a measurement script, not a test: run it by hand.

Usage::

    python benchmarks/bench_findings.py --sizes 12000,12000x100 --runs 3
    python benchmarks/bench_findings.py --sizes 120000x100 --runs 1 --before /tmp/old/src
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
import cProfile, io, json, pickle, pstats, sys, time
from hpo_analysis import analyze
with open(sys.argv[1], "rb") as handle:
    rows = pickle.load(handle)
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
print(json.dumps({"cpu": cpu, "digest": digest, "profile": text}))
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


def run(src: Path, rows: Path, profile: bool) -> dict[str, Any]:
    env = dict(os.environ, PYTHONPATH=str(src))
    mode = "profile" if profile else "time"
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(rows), mode],
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
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "hpo-bench")
    args = parser.parse_args()
    args.cache.mkdir(parents=True, exist_ok=True)
    versions = [("after", SRC)] + ([("before", args.before)] if args.before else [])
    for text in args.sizes.split(","):
        size = Size.parse(text)
        rows = rows_for(args.cache, size)
        times: dict[str, list[float]] = {name: [] for name, _ in versions}
        digests: dict[str, str] = {}
        for index in range(args.runs):
            for name, src in versions:  # interleaved, so load changes hit both alike
                result = run(src, rows, args.profile and index == 0)
                times[name].append(result["cpu"])
                digests[name] = result["digest"]
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


if __name__ == "__main__":
    main()
