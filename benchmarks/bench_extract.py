"""Speed and memory of ``hpo-analysis extract`` at 600, 12,000 and 120,000 trials.

For each size it generates (once, cached) a simulated tree in the runner's layout with
``hpo_analysis.example.generate_example`` (per study: ``trials/*.json``, the study dump
``<study>_all_trials.json`` and the best-trial file ``<study>_<budget>_best.json``; curves of
up to 100 epochs), in one of two shapes:

- ``N`` (e.g. ``12000``): 12 studies (4 budgets x 3 horizons) of N/12 trials each;
- ``NxS`` (e.g. ``120000x100``): N/S studies of S trials each (4 budgets x N/(4S) horizons),
  the layout of a lab with many sweeps.

Then it times side by side, ``--runs`` times each, in separate processes:

- ``baseline``: ``benchmarks/baseline.py``, the straightforward script for the same outputs;
- ``extract``: a full run (``--no-cache``, fresh output directory, no report);
- ``parse-only``: reading and parsing every file once with orjson (the stdlib for files
  orjson refuses), the floor any extractor has to pay;
- ``incremental``: ``extract`` again into a cached output after 1% of the trial files changed,
  spread over every study;
- ``study``: the same number of files changed, all in one study (a study still running while
  the others are done; all of that study's files when it has fewer);
- ``unchanged``: ``extract`` again into a cached output with nothing changed since its last
  run (a periodic re-run between a running study's trials);
- ``before`` (with ``--before SRC``): the same full ``extract`` run with another checkout's
  ``src`` directory first on ``PYTHONPATH``, to compare two versions in one run.

The baseline reads only ``trials/*.json``; ``extract`` also reads the study dumps and the
best-trial files and merges every record of a trial into one row, so it reads about twice the
bytes. Each run is measured in wall seconds and in CPU seconds (user + system of the process
and every process it waited for: ``RUSAGE_CHILDREN`` before and after), since on a shared
machine wall time depends on the other jobs. Peak memory is the largest resident set of any
process of the run (GNU time's ``%M``) and the largest sum over the run's processes, sampled
every 20 ms from /proc. Medians are reported. The first incremental run of each kind is compared
byte for byte with a full run of the same changed tree.

Every version runs from compiled bytecode, as an installed package does (``pip install``
compiles each module): before timing, the tool's package directory (and the ``--before`` one)
is compiled, and ``PYTHONDONTWRITEBYTECODE`` is taken out of the runs' environment. With it
set and a checkout run from source, every run would compile every module of the tool again
(about 0.3 CPU s a run on the machine of the tables). ``--no-compile`` keeps the environment
as it is.
This is a measurement script, not a test: run it by hand.

Usage::

    python benchmarks/bench_extract.py                      # all sizes, 3 runs
    python benchmarks/bench_extract.py --sizes 600,12000 --runs 5
    python benchmarks/bench_extract.py --sizes 120000x100 --runs 1
    python benchmarks/bench_extract.py --sizes 12000 --before /tmp/old-checkout/src
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
STUDIES = 12  # 4 budgets x 3 horizons
BUDGETS = ("2M", "20M", "200M", "2B")
CHANGED_SHARE = 0.01  # incremental runs: this share of the trial files changed


@dataclasses.dataclass(frozen=True)
class Size:
    """A tree shape: ``trials`` in total, ``per_study`` trials per study (None: 12 studies)."""

    trials: int
    per_study: int | None = None

    @classmethod
    def parse(cls, text: str) -> Size:
        total, _, per = text.lower().partition("x")
        size = cls(int(total), int(per) if per else None)
        if size.per_study is not None and size.trials % (size.per_study * len(BUDGETS)):
            raise SystemExit(f"{text}: N must be a multiple of 4 x S (4 budgets)")
        return size

    @property
    def label(self) -> str:
        studies = self.trials // self.per_study if self.per_study else STUDIES
        return f"{self.trials:,} ({studies:,} studies)"

    @property
    def key(self) -> str:
        return f"{self.trials}" + (f"x{self.per_study}" if self.per_study else "")


def tree_for(cache: Path, size: Size) -> Path:
    """The generated tree of ``size``, made once and kept under ``cache``."""
    tree = cache / f"tree-{size.key}"
    marker = tree / ".complete"
    if not marker.exists():
        from hpo_analysis.example import generate_example

        shutil.rmtree(tree, ignore_errors=True)
        print(f"generating {size.label} trials into {tree} ...", file=sys.stderr, flush=True)
        if size.per_study is None:
            generate_example(tree, trials_per_study=size.trials // STUDIES, max_epochs=100)
        else:
            n_horizons = size.trials // (size.per_study * len(BUDGETS))
            generate_example(
                tree,
                budgets=BUDGETS,
                horizons=[f"h{i}" for i in range(1, n_horizons + 1)],
                trials_per_study=size.per_study,
                max_epochs=100,
            )
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


# wall seconds, CPU seconds, peak RSS of one process (MB), peak summed RSS (MB)
Measured = tuple[float, float, float, float]


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measure(argv: list[str], env: dict[str, str] | None = None) -> Measured:
    """Wall and CPU seconds, peak RSS of one process (MB) and peak summed RSS (MB) of ``argv``.

    CPU seconds are those of every process of the run that has been waited for (the tool,
    its worker processes, GNU time itself, which costs a millisecond)."""
    gnu_time = shutil.which("time", path="/usr/bin")
    report = tempfile.NamedTemporaryFile(suffix=".rss", delete=False)  # noqa: SIM115
    report.close()
    if gnu_time:
        argv = [gnu_time, "-f", "%M", "-o", report.name, *argv]
    cpu_before = _children_cpu()
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    peak_sum = 0
    while proc.poll() is None:
        peak_sum = max(peak_sum, sum(_rss_kb(p) for p in _descendants(proc.pid)))
        time.sleep(0.02)
    wall = time.perf_counter() - start
    cpu = _children_cpu() - cpu_before
    stderr = proc.stderr.read().decode() if proc.stderr else ""
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({proc.returncode}):\n{stderr}")
    try:  # GNU time's %M: the largest resident set of any single process of the run
        peak_one = float(Path(report.name).read_text().split()[-1])
    except (OSError, ValueError, IndexError):
        peak_one = float("nan")
    os.unlink(report.name)
    return wall, cpu, peak_one / 1024, peak_sum / 1024


def extract_argv(tree: Path, out: Path, cache: bool, report: bool = False) -> list[str]:
    """The extract command line; without the report unless ``report`` (the command as a user
    types it)."""
    argv = [sys.executable, "-m", "hpo_analysis", "extract", str(tree), "--out", str(out), "-q"]
    help_text = subprocess.run(
        [sys.executable, "-m", "hpo_analysis", "extract", "--help"], capture_output=True, text=True
    ).stdout
    if "--no-report" in help_text and not report:
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


def change_files(
    tree: Path, share: float, one_study: bool = False
) -> dict[Path, tuple[bytes, int]]:
    """Rewrite ``share`` of the trial files (another state), spread over every study, or
    with ``one_study`` all in the first study (a study still running); returns what to
    restore."""
    n = max(1, round(len(list(tree.glob("*/trials/*.json"))) * share))
    if one_study:
        study = sorted(p for p in tree.iterdir() if (p / "trials").is_dir())[0]
        files = sorted(study.glob("trials/*.json"))
    else:
        files = sorted(tree.glob("*/trials/*.json"))
    step = max(1, len(files) // n)
    saved: dict[Path, tuple[bytes, int]] = {}
    for path in files[::step][:n]:
        data = path.read_bytes()
        changed = data.replace(b'"state": "COMPLETE"', b'"state": "PRUNED"', 1)
        if changed == data:  # e.g. a tree left changed by an interrupted run
            restore(saved)
            raise SystemExit(f"{path}: no COMPLETE state to change; delete {tree} to make it again")
        saved[path] = (data, path.stat().st_mtime_ns)
        path.write_bytes(changed)
    return saved


def restore(saved: dict[Path, tuple[bytes, int]]) -> None:
    for path, (data, mtime_ns) in saved.items():
        path.write_bytes(data)
        os.utime(path, ns=(mtime_ns, mtime_ns))


def bench(
    size: Size,
    runs: int,
    cache: Path,
    before: Path | None,
    incremental: bool = True,
    report: bool = False,
) -> dict[str, object]:
    tree = tree_for(cache, size)
    work = Path(tempfile.mkdtemp(prefix=f"bench-{size.key}-", dir=cache))
    kinds = ["baseline", "extract", "parse"]
    kinds += ["incremental", "study", "unchanged"] if incremental else []
    kinds += ["before"] if before else []
    kinds += (["report"] + (["before_report"] if before else [])) if report else []
    results: dict[str, list[Measured]] = {k: [] for k in kinds}
    before_env = None
    if before is not None:
        before_env = {**os.environ, "PYTHONPATH": str(before.resolve())}
    identical: bool | None = None
    try:
        for run in range(runs):
            shutil.rmtree(work / "base", ignore_errors=True)
            results["baseline"].append(
                measure([sys.executable, str(HERE / "baseline.py"), str(tree), str(work / "base")])
            )
            shutil.rmtree(work / "full", ignore_errors=True)
            results["extract"].append(measure(extract_argv(tree, work / "full", cache=False)))
            if before_env is not None:
                shutil.rmtree(work / "before", ignore_errors=True)
                argv = extract_argv(tree, work / "before", cache=False)
                results["before"].append(measure(argv, env=before_env))
            if report:
                shutil.rmtree(work / "report", ignore_errors=True)
                argv = extract_argv(tree, work / "report", cache=False, report=True)
                results["report"].append(measure(argv))
                if before_env is not None:
                    shutil.rmtree(work / "report", ignore_errors=True)
                    results["before_report"].append(measure(argv, env=before_env))
            results["parse"].append(
                measure([sys.executable, str(Path(__file__)), "--parse-only", str(tree)])
            )
            if not incremental:
                continue
            out = work / "incremental"
            if not out.exists():
                measure(extract_argv(tree, out, cache=True))
            for kind, one_study in (("incremental", False), ("study", True)):
                saved = change_files(tree, CHANGED_SHARE, one_study)
                try:
                    results[kind].append(measure(extract_argv(tree, out, cache=True)))
                    if run == 0:  # the incremental outputs against a full run of the same
                        # tree, with the same command line (the metadata records it): a fresh
                        # directory of the same name has no cache to reuse
                        aside = work / "incremental-run"
                        out.rename(aside)
                        measure(extract_argv(tree, out, cache=True))
                        same = same_outputs(aside, out)
                        identical = same if identical is None else identical and same
                        shutil.rmtree(out)
                        aside.rename(out)
                finally:
                    restore(saved)
                measure(extract_argv(tree, out, cache=True))  # back to the unchanged state
            results["unchanged"].append(measure(extract_argv(tree, out, cache=True)))
    finally:
        shutil.rmtree(work, ignore_errors=True)

    def med(key: str, index: int) -> float:
        return statistics.median(r[index] for r in results[key])

    row: dict[str, object] = {"size": size.key, "label": size.label, "runs": runs}
    for key in kinds:
        row[f"{key}_s"] = med(key, 0)
        row[f"{key}_cpu_s"] = med(key, 1)
        row[f"{key}_peak_mb"] = med(key, 2)
        row[f"{key}_peak_sum_mb"] = med(key, 3)
    row["incremental_identical"] = identical
    row["all_runs"] = results
    return row


def same_outputs(one: Path, other: Path) -> bool:
    """Whether two output directories hold the same files with the same bytes (the cache and
    the lock file aside)."""

    def files(root: Path) -> dict[str, bytes]:
        return {
            p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*"))
            if p.is_file() and ".cache" not in p.relative_to(root).parts
        }

    return files(one) == files(other)


def table(rows: list[dict[str, object]]) -> str:
    """One line per size: wall and CPU seconds of every tool, ratios on CPU seconds."""
    has_before = any("before_s" in r for r in rows)
    head = ["trials", "baseline s (CPU)"]
    head += ["before s (CPU)"] if has_before else []
    head += [
        "extract s (CPU)",
        "baseline / extract (CPU)",
        "parse-only s (CPU)",
        "extract / parse-only (CPU)",
        "extract peak MB (one / all)",
        "baseline peak MB",
        f"incremental s (CPU), {CHANGED_SHARE:.0%} changed",
        f"incremental s (CPU), {CHANGED_SHARE:.0%} changed in one study",
        "re-run, nothing changed s (CPU)",
    ]
    has_report = any("report_s" in r for r in rows)
    if has_report:
        head += ["before + report s (CPU)"] if has_before else []
        head += ["extract + report s (CPU)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---:|" * len(head)]

    def num(r: dict[str, object], key: str) -> float:
        return float(r[key])  # type: ignore[arg-type]

    def pair(r: dict[str, object], kind: str) -> str:
        return f"{num(r, kind + '_s'):.2f} ({num(r, kind + '_cpu_s'):.2f})"

    for r in rows:
        e_cpu = num(r, "extract_cpu_s")
        cells = [str(r["label"]), pair(r, "baseline")]
        if has_before:
            cells.append(pair(r, "before") if "before_s" in r else "")
        same = {True: "identical", False: "DIFFERENT", None: "not checked"}[
            r.get("incremental_identical")  # type: ignore[index]
        ]
        cells += [
            pair(r, "extract"),
            f"{num(r, 'baseline_cpu_s') / e_cpu:.1f}x",
            pair(r, "parse"),
            f"{e_cpu / num(r, 'parse_cpu_s'):.1f}x",
            f"{num(r, 'extract_peak_mb'):.0f} / {num(r, 'extract_peak_sum_mb'):.0f}",
            f"{num(r, 'baseline_peak_mb'):.0f}",
            f"{pair(r, 'incremental')}: {num(r, 'incremental_cpu_s') / e_cpu:.0%} of extract, "
            f"outputs {same}"
            if "incremental_s" in r
            else "not run",
            f"{pair(r, 'study')}: {num(r, 'study_cpu_s') / e_cpu:.0%} of extract"
            if "study_s" in r
            else "not run",
            f"{pair(r, 'unchanged')}: {num(r, 'unchanged_cpu_s') / e_cpu:.0%} of extract"
            if "unchanged_s" in r
            else "not run",
        ]
        if has_report:
            if has_before:
                cells.append(pair(r, "before_report") if "before_report_s" in r else "")
            cells.append(pair(r, "report") if "report_s" in r else "")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def compile_tools(before: Path | None) -> list[str]:
    """Compile the package directory of the tool (and of ``before``) as ``pip install`` does;
    the compiled directories."""
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    here = subprocess.run(
        [
            sys.executable,
            "-c",
            "import hpo_analysis, os; print(os.path.dirname(hpo_analysis.__file__))",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    packages = [here] + ([str(before / "hpo_analysis")] if before is not None else [])
    for package in packages:
        subprocess.run([sys.executable, "-m", "compileall", "-q", package], check=True)
    return packages


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sizes",
        default="600,12000,120000,120000x100",
        help="comma-separated sizes: N (12 studies) or NxS (N/S studies of S trials)",
    )
    parser.add_argument("--runs", type=int, default=3, help="runs per tool and size (median)")
    parser.add_argument(
        "--cache",
        type=Path,
        default=Path(tempfile.gettempdir()) / "hpo-bench",
        help="where generated trees are kept between invocations",
    )
    parser.add_argument(
        "--before",
        type=Path,
        metavar="SRC",
        help="also time extract from this src directory (another version), side by side",
    )
    parser.add_argument(
        "--no-incremental",
        action="store_true",
        help="skip the incremental runs (each costs about four full runs)",
    )
    parser.add_argument(
        "--no-compile",
        action="store_true",
        help="run the tool as the environment says (e.g. with PYTHONDONTWRITEBYTECODE, every "
        "run compiles its modules again) instead of from compiled bytecode",
    )
    parser.add_argument(
        "--report",
        action="store_true",
        help="also time extract with the report (the command as a user types it)",
    )
    parser.add_argument("--json", type=Path, help="also write the results as JSON here")
    parser.add_argument("--parse-only", metavar="TREE", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.parse_only:
        parse_only(args.parse_only)
        return 0
    args.cache.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("SOURCE_DATE_EPOCH", "1767225600")
    if not args.no_compile:
        print("compiled: " + ", ".join(compile_tools(args.before)), file=sys.stderr)
    rows = []
    for size in (Size.parse(s) for s in args.sizes.split(",")):
        rows.append(
            bench(size, args.runs, args.cache, args.before, not args.no_incremental, args.report)
        )
        print(table(rows[-1:]).splitlines()[-1], file=sys.stderr, flush=True)
    print(f"{os.cpu_count()} CPUs; medians of {args.runs} runs; seconds wall (CPU)\n")
    print(table(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
