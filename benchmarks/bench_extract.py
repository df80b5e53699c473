"""Speed and memory of ``hpo-analysis extract`` at 600, 12,000 and 120,000 trials.

For each size it generates (once, cached) a simulated seed-layout tree with
``hpo_analysis.example.generate_example`` (12 studies, curves of up to 100 epochs), then times
side by side, ``--runs`` times each, in separate processes:

- ``baseline``: ``benchmarks/baseline.py``, the straightforward script for the same outputs;
- ``extract``: a full run (``--no-cache``, fresh output directory, no report);
- ``parse-only``: reading and parsing every file once with orjson (the stdlib for files
  orjson refuses), the floor any extractor has to pay;
- ``incremental``: ``extract`` again into a cached output after 50 files changed.

Peak memory is the largest resident set of any process of the run (``ru_maxrss``) and the
largest sum over the run's processes, sampled every 20 ms from /proc. Medians are reported.
This is a measurement script, not a test: run it by hand.

Usage::

    python benchmarks/bench_extract.py                      # all sizes, 3 runs
    python benchmarks/bench_extract.py --sizes 600,12000 --runs 5
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
STUDIES = 12  # 4 budgets x 3 horizons
CHANGED_FILES = 50


def tree_for(cache: Path, trials: int) -> Path:
    """The generated tree of ``trials`` trials, made once and kept under ``cache``."""
    tree = cache / f"tree-{trials}"
    marker = tree / ".complete"
    if not marker.exists():
        from hpo_analysis.example import generate_example

        shutil.rmtree(tree, ignore_errors=True)
        print(f"generating {trials} trials into {tree} ...", file=sys.stderr, flush=True)
        generate_example(tree, trials_per_study=trials // STUDIES, max_epochs=100)
        marker.write_text("ok\n")
    return tree


def _rss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _descendants(pid: int) -> list[int]:
    found = [pid]
    for current in found:
        try:
            tasks = os.listdir(f"/proc/{current}/task")
        except OSError:
            continue
        for task in tasks:
            try:
                with open(f"/proc/{current}/task/{task}/children") as handle:
                    found.extend(int(c) for c in handle.read().split())
            except OSError:
                pass
    return found


def measure(argv: list[str]) -> tuple[float, float, float]:
    """Wall seconds, peak RSS of one process (MB) and peak summed RSS (MB) of ``argv``."""
    gnu_time = shutil.which("time", path="/usr/bin")
    report = tempfile.NamedTemporaryFile(suffix=".rss", delete=False)  # noqa: SIM115
    report.close()
    if gnu_time:
        argv = [gnu_time, "-f", "%M", "-o", report.name, *argv]
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak_sum = 0
    while proc.poll() is None:
        peak_sum = max(peak_sum, sum(_rss_kb(p) for p in _descendants(proc.pid)))
        time.sleep(0.02)
    wall = time.perf_counter() - start
    stderr = proc.stderr.read().decode() if proc.stderr else ""
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({proc.returncode}):\n{stderr}")
    try:  # GNU time's %M: the largest resident set of any single process of the run
        peak_one = float(Path(report.name).read_text().split()[-1])
    except (OSError, ValueError, IndexError):
        peak_one = float("nan")
    os.unlink(report.name)
    return wall, peak_one / 1024, peak_sum / 1024


def extract_argv(tree: Path, out: Path, cache: bool) -> list[str]:
    argv = [sys.executable, "-m", "hpo_analysis", "extract", str(tree), "--out", str(out), "-q"]
    help_text = subprocess.run(
        [sys.executable, "-m", "hpo_analysis", "extract", "--help"], capture_output=True, text=True
    ).stdout
    if "--no-report" in help_text:
        argv.append("--no-report")
    return argv if cache else [*argv, "--no-cache"]


def parse_only(tree: str) -> None:
    """Read and parse every trial file once, as fast as this package's parser can."""
    import json as std_json

    import orjson

    count = 0
    for root, dirs, files in os.walk(tree):
        dirs.sort()
        for name in sorted(files):
            if not name.endswith(".json"):
                continue
            with open(os.path.join(root, name), "rb") as handle:
                data = handle.read()
            try:
                orjson.loads(data)
            except orjson.JSONDecodeError:
                std_json.loads(data)
            count += 1
    print(count)


def change_files(tree: Path, n: int) -> dict[Path, tuple[bytes, int]]:
    """Rewrite ``n`` trial files (another objective); returns what to restore."""
    files = sorted(tree.glob("*/trials/*.json"))
    step = max(1, len(files) // n)
    saved = {}
    for path in files[::step][:n]:
        data = path.read_bytes()
        saved[path] = (data, path.stat().st_mtime_ns)
        path.write_bytes(data.replace(b'"state": "COMPLETE"', b'"state": "PRUNED"', 1))
    return saved


def restore(saved: dict[Path, tuple[bytes, int]]) -> None:
    for path, (data, mtime_ns) in saved.items():
        path.write_bytes(data)
        os.utime(path, ns=(mtime_ns, mtime_ns))


def bench(trials: int, runs: int, cache: Path) -> dict[str, object]:
    tree = tree_for(cache, trials)
    work = Path(tempfile.mkdtemp(prefix=f"bench-{trials}-", dir=cache))
    results: dict[str, list[tuple[float, float, float]]] = {
        k: [] for k in ("baseline", "extract", "parse", "incremental")
    }
    try:
        for _ in range(runs):
            shutil.rmtree(work / "base", ignore_errors=True)
            results["baseline"].append(
                measure([sys.executable, str(HERE / "baseline.py"), str(tree), str(work / "base")])
            )
            shutil.rmtree(work / "full", ignore_errors=True)
            results["extract"].append(measure(extract_argv(tree, work / "full", cache=False)))
            results["parse"].append(
                measure([sys.executable, str(Path(__file__)), "--parse-only", str(tree)])
            )
            out = work / "incremental"
            if not out.exists():
                measure(extract_argv(tree, out, cache=True))
            saved = change_files(tree, CHANGED_FILES)
            try:
                results["incremental"].append(measure(extract_argv(tree, out, cache=True)))
            finally:
                restore(saved)
            measure(extract_argv(tree, out, cache=True))  # back to the unchanged state
    finally:
        shutil.rmtree(work, ignore_errors=True)

    def med(key: str, index: int) -> float:
        return statistics.median(r[index] for r in results[key])

    return {
        "trials": trials,
        "runs": runs,
        "baseline_s": med("baseline", 0),
        "extract_s": med("extract", 0),
        "parse_only_s": med("parse", 0),
        "incremental_s": med("incremental", 0),
        "baseline_peak_mb": med("baseline", 1),
        "extract_peak_mb": med("extract", 1),
        "extract_peak_sum_mb": med("extract", 2),
        "incremental_peak_sum_mb": med("incremental", 2),
        "all_runs": results,
    }


def table(rows: list[dict[str, object]]) -> str:
    lines = [
        "| trials | baseline s | extract s | baseline / extract | parse-only s | "
        "extract / parse-only | extract peak MB (one process / all) | baseline peak MB | "
        f"incremental s ({CHANGED_FILES} files changed) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        b, e, p, i = (
            float(r[k]) for k in ("baseline_s", "extract_s", "parse_only_s", "incremental_s")
        )  # type: ignore[arg-type]
        lines.append(
            f"| {r['trials']:,} | {b:.2f} | {e:.2f} | {b / e:.1f}x | {p:.2f} | {e / p:.1f}x | "
            f"{float(r['extract_peak_mb']):.0f} / {float(r['extract_peak_sum_mb']):.0f} | "  # type: ignore[arg-type]
            f"{float(r['baseline_peak_mb']):.0f} | {i:.2f} ({i / e:.0%} of extract) |"  # type: ignore[arg-type]
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="600,12000,120000", help="comma-separated trial counts")
    parser.add_argument("--runs", type=int, default=3, help="runs per tool and size (median)")
    parser.add_argument(
        "--cache",
        type=Path,
        default=Path(tempfile.gettempdir()) / "hpo-bench",
        help="where generated trees are kept between invocations",
    )
    parser.add_argument("--json", type=Path, help="also write the results as JSON here")
    parser.add_argument("--parse-only", metavar="TREE", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.parse_only:
        parse_only(args.parse_only)
        return 0
    args.cache.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("SOURCE_DATE_EPOCH", "1767225600")
    rows = []
    for size in (int(s) for s in args.sizes.split(",")):
        rows.append(bench(size, args.runs, args.cache))
        print(table(rows[-1:]).splitlines()[-1], file=sys.stderr, flush=True)
    print(f"{os.cpu_count()} CPUs; medians of {args.runs} runs\n")
    print(table(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
