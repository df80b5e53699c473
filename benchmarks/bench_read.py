"""What reading costs against parsing: the reading phase of ``extract``, in CPU seconds.

For one tree (e.g. the 12,000-trial tree of ``bench_extract.py``) it measures, each in a fresh
process, ``--runs`` times, and prints medians side by side:

- ``parse``: read and parse every ``.json`` file once with orjson (the standard library for
  files orjson refuses): the floor any extractor has to pay;
- ``trial file``: per per-trial JSON file, what ``extract`` does with it in process: read,
  check, normalize, the summary row, the curve block and the JSON fragment, appended to a spool
  (``pipeline._read_one`` + ``CacheWriter.append``), in µs per file, beside the parse alone of
  the same files;
- ``reading``: the whole reading phase (``pipeline._collect``: every file read, every trial's
  records merged, every file accounted for) with one process;
- ``extract``: a full ``hpo-analysis extract --no-cache --no-report --jobs 1`` run.

With ``--before SRC`` every measure is also taken with another checkout's ``src`` first on
``PYTHONPATH``, interleaved run by run, so both versions meet the same machine load. CPU time
(user + system) is reported, not wall time: on a shared machine wall time depends on the other
jobs. ``--profile`` prints a cProfile of the reading phase instead. This is a measurement
script, not a test: run it by hand.

Usage::

    python benchmarks/bench_read.py /tmp/hpo-bench/tree-12000 --runs 3 --before /tmp/old/src
    python benchmarks/bench_read.py /tmp/hpo-bench/tree-12000 --profile
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SRC = HERE.parent / "src"


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _files(tree: Path) -> list[Path]:
    return sorted(p for p in tree.rglob("*.json") if p.is_file())


def measure_parse(tree: Path) -> dict[str, float]:
    """CPU seconds to read and parse every .json file; µs per per-trial file."""
    import orjson

    from hpo_analysis.sources import trial_json

    def parse(data: bytes) -> object:
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:  # NaN tokens, ...
            return json.loads(data)

    paths = _files(tree)
    trial_paths = [p for p in paths if trial_json.sniff(p)]
    start = _cpu()
    for path in paths:
        parse(path.read_bytes())
    total = _cpu() - start
    start = _cpu()
    for path in trial_paths:
        parse(path.read_bytes())
    per_file = (_cpu() - start) / max(1, len(trial_paths)) * 1e6
    return {"parse_s": total, "parse_us_per_trial_file": per_file}


def _found(tree: Path) -> list[object]:
    from hpo_analysis.sources import discover

    return list(discover(tree))


def measure_trial_files(tree: Path) -> dict[str, float]:
    """µs per per-trial JSON file: read, normalize, row, curve block, fragment, spool."""
    from hpo_analysis.cache import CacheWriter
    from hpo_analysis.model import Settings
    from hpo_analysis.pipeline import _read_one

    settings = Settings()
    found = [f for f in _found(tree) if getattr(f, "reader", None) == "trial_json"]
    with tempfile.TemporaryDirectory() as tmp:
        store = CacheWriter(Path(tmp) / "spool", {}, keep=False)
        start = _cpu()
        for item in found:
            outcome = _read_one(item, settings, keep=False)  # type: ignore[arg-type]
            for _row, row_json, fragment, block in outcome.entries:
                store.append(row_json, fragment, block)
        elapsed = _cpu() - start
        store.close()
    return {"trial_file_us": elapsed / max(1, len(found)) * 1e6, "trial_files": len(found)}


def _collect_once(tree: Path) -> float:
    from hpo_analysis.cache import CacheWriter
    from hpo_analysis.model import Settings
    from hpo_analysis.pipeline import ExtractResult, _collect

    settings = Settings()
    found = _found(tree)
    with tempfile.TemporaryDirectory() as tmp:
        store = CacheWriter(Path(tmp) / "spool", {}, keep=False)
        result = ExtractResult(out_dir=Path(tmp))
        start = _cpu()
        _collect(found, settings, 1, store, None, result, None, None)  # type: ignore[arg-type]
        elapsed = _cpu() - start
        store.close()
    return elapsed


def measure_reading(tree: Path) -> dict[str, float]:
    return {"reading_s": _collect_once(tree)}


def measure_extract(tree: Path) -> dict[str, float]:
    """CPU seconds of a full extract run in a child process."""
    with tempfile.TemporaryDirectory() as tmp:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run(
            [
                sys.executable,
                "-m",
                "hpo_analysis",
                "extract",
                str(tree),
                "--out",
                str(Path(tmp) / "out"),
                "-q",
                "--no-cache",
                "--no-report",
                "--jobs",
                "1",
            ],
            check=True,
        )
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"extract_s": cpu}


MEASURES = {
    "parse": measure_parse,
    "trial_files": measure_trial_files,
    "reading": measure_reading,
    "extract": measure_extract,
}


def _child(measure: str, tree: Path, src: Path) -> dict[str, float]:
    env = dict(os.environ, PYTHONPATH=str(src))
    out = subprocess.run(
        [sys.executable, __file__, str(tree), "--child", measure],
        env=env,
        capture_output=True,
        text=True,
    )
    if out.returncode:
        raise SystemExit(f"{measure} ({src}) failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tree", type=Path)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--before", type=Path, help="another checkout's src directory")
    parser.add_argument("--profile", action="store_true", help="cProfile the reading phase")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(MEASURES[args.child](args.tree)))
        return
    if args.profile:
        import cProfile
        import pstats

        profile = cProfile.Profile()
        profile.runcall(_collect_once, args.tree)
        pstats.Stats(profile).sort_stats("cumulative").print_stats(45)
        pstats.Stats(profile).sort_stats("tottime").print_stats(30)
        return
    versions = {"after": SRC}
    if args.before:
        versions = {"before": args.before.resolve(), "after": SRC}
    results: dict[str, dict[str, list[float]]] = {v: {} for v in versions}
    for run in range(args.runs):
        for measure in MEASURES:
            for version, src in versions.items():
                started = time.perf_counter()
                figures = _child(measure, args.tree, src)
                for key, value in figures.items():
                    results[version].setdefault(key, []).append(value)
                print(
                    f"run {run + 1} {measure:11} {version:6} "
                    + " ".join(f"{k}={v:.3f}" for k, v in figures.items())
                    + f" ({time.perf_counter() - started:.1f} s wall)",
                    file=sys.stderr,
                )
    keys = list(results["after"])
    print(f"\nmedians of {args.runs} (CPU):")
    print(f"{'measure':28}" + "".join(f"{v:>14}" for v in versions))
    for key in keys:
        cells = "".join(f"{statistics.median(results[v][key]):>14.3f}" for v in versions)
        print(f"{key:28}{cells}")


if __name__ == "__main__":
    main()
