from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings

# Property tests are derandomized (examples derived from each test, not from a random seed) and
# keep no example database: every run, on every machine, tries the same examples, so a failure
# is reproducible and a green run stays green. No example has a deadline: on a busy machine an
# example can take seconds, and speed is measured by the benchmarks, not by the tests.
# HYPOTHESIS_PROFILE=explore searches at random.
settings.register_profile("ci", derandomize=True, database=None, print_blob=True, deadline=None)
settings.register_profile("explore", derandomize=False, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "hpo"


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str


def run_cli(
    *args: str,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    subprocess_run: bool = False,
) -> Run:
    """Run the command line as a user would: ``cli.main`` in this process, with its own argv,
    working directory, environment, stdout and stderr; ``subprocess_run=True`` starts
    ``python -m hpo_analysis`` instead, for tests of the entry point, signals or exit on a
    terminal."""
    full_env = {"SOURCE_DATE_EPOCH": "1767225600", **(env or {})}
    if subprocess_run:
        proc = subprocess.run(
            [sys.executable, "-m", "hpo_analysis", *args],
            cwd=cwd or REPO,
            env={**os.environ, **full_env},
            capture_output=True,
            text=True,
            timeout=300,
        )
        return Run(proc.returncode, proc.stdout, proc.stderr)
    from hpo_analysis.cli import main

    saved_env = {k: os.environ.get(k) for k in full_env}
    saved_cwd = os.getcwd()
    out, err = io.StringIO(), io.StringIO()
    os.environ.update(full_env)
    try:
        os.chdir(cwd or REPO)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(list(args))
            except SystemExit as stop:  # argparse: --help, --version, usage errors
                code = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 2)
    finally:
        os.chdir(saved_cwd)
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return Run(code, out.getvalue(), err.getvalue())


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def strict_json(path: Path) -> Any:
    def refuse(token: str) -> None:
        raise ValueError(f"non-standard token {token}")

    with open(path, encoding="utf-8") as handle:
        return json.load(handle, parse_constant=refuse)


def write_trial(
    root: Path, study: str, number: int, body: dict[str, Any] | str | bytes, name: str | None = None
) -> Path:
    """Write one per-trial file in the runner's layout; dicts are dumped as Python would."""
    path = root / study / "trials" / (name or f"trial_{number:04d}.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(body, dict):
        body = json.dumps(body, indent=2)
    path.write_bytes(body if isinstance(body, bytes) else body.encode("utf-8"))
    return path


def rewrite_same_size_keeping_mtime(path: Path) -> os.stat_result:
    """Change the file's content, not its size, and set its mtime back; its stat before."""
    info = path.stat()
    data = path.read_bytes()
    swapped = data.replace(b'"COMPLETE"', b'"PRUNED__"', 1)
    assert len(swapped) == len(data) and swapped != data
    path.write_bytes(swapped)
    os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns))
    return info


def curve(*val_losses: float, train: float = 0.5) -> list[dict[str, float]]:
    return [
        {"epoch": i, "train_loss": train, "val_loss": v, "val_auc": 0.6}
        for i, v in enumerate(val_losses)
    ]


def shared_dir(tmp_path_factory: pytest.TempPathFactory, name: str) -> Path:
    """A directory of this test run shared by its pytest-xdist workers (``name`` under the
    run's base temporary directory), or this process's own one without xdist."""
    if os.environ.get("PYTEST_XDIST_WORKER") is None:
        return tmp_path_factory.mktemp(name)
    root = tmp_path_factory.getbasetemp().parent / name  # this run's, shared by its workers
    root.mkdir(exist_ok=True)
    return root


@contextlib.contextmanager
def made_once(root: Path) -> Iterator[bool]:
    """Under ``root``'s file lock: yields True for the first worker, which makes what ``root``
    holds (it is marked done when the block ends without an error), False for the others."""
    from filelock import FileLock

    done = root / "made.done"
    with FileLock(str(root / "made.lock")):
        first = not done.exists()
        yield first
        if first:
            done.touch()


def tree_digest(root: Path) -> dict[str, str]:
    """Every file under ``root`` (relative POSIX path) and the SHA-256 of its bytes."""
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="session")
def example_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundled example extracted once through the CLI, once per test run: the pytest-xdist
    workers of a run share it (the first one extracts under a file lock; tests only read it,
    or copy it to change it). Beside it, ``inputs.json``: the digest of every input file
    taken just before that run (see ``example_inputs_before``)."""
    root = shared_dir(tmp_path_factory, "example")
    out = root / "analysis"
    with made_once(root) as first:
        if first:
            shutil.rmtree(out, ignore_errors=True)
            (root / "inputs.json").write_text(json.dumps(tree_digest(EXAMPLE)), encoding="utf-8")
            # once through the real entry point (python -m hpo_analysis), as a user runs it; the
            # output named from its parent (the outputs record the command), so that a copy of
            # it elsewhere is what the same command run beside that copy writes
            result = run_cli(
                "extract", str(EXAMPLE), "--out", out.name, cwd=root, subprocess_run=True
            )
            assert result.returncode == 0, result.stderr
    return out


def example_inputs_before(example_out: Path) -> dict[str, str]:
    """The digest of the bundled example's files taken before ``example_out`` was extracted."""
    return json.loads((example_out.parent / "inputs.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def optuna_runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Real Optuna storages, journals and logs written by Optuna (tests/optuna_runs.py) once
    per test run; each pytest-xdist worker gets its own copy (Optuna opens the SQLite storages
    for writing)."""
    pytest.importorskip("optuna")
    shared = shared_dir(tmp_path_factory, "optuna_runs")
    made = shared / "runs"
    with made_once(shared) as first:
        if first:
            shutil.rmtree(made, ignore_errors=True)
            made.mkdir()
            proc = subprocess.run(
                [sys.executable, str(REPO / "tests" / "optuna_runs.py"), str(made)],
                capture_output=True,
                text=True,
                timeout=300,
            )
            assert proc.returncode == 0, proc.stderr
    directory = tmp_path_factory.mktemp("optuna_runs") / "runs"
    shutil.copytree(made, directory)
    return directory


def samples_dir() -> Path | None:
    """The shared real study dumps (HPO_SAMPLES, else ../shared/samples), or None."""
    here = Path(__file__).resolve()
    candidates = [os.environ.get("HPO_SAMPLES", "")]
    candidates += [str(here.parents[2] / "shared" / "samples")]
    candidates += [str(here.parents[1].parent / "shared" / "samples")]
    for candidate in candidates:
        if candidate and (Path(candidate) / "financial_ts_scaling").is_dir():
            return Path(candidate) / "financial_ts_scaling"
    return None


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The ``slow`` tests first (otherwise in collection order): the pytest-xdist workers
    start on the long ones, and the short ones even out the end instead of one worker
    finishing a long test alone."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


@pytest.fixture()
def counted_hashes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The name of every file the cache check hashes (``cache.sha256_of``)."""
    from hpo_analysis import cache

    seen: list[str] = []
    original = cache.sha256_of

    def sha256_of(path: Path) -> str | None:
        seen.append(Path(path).name)
        return original(path)

    monkeypatch.setattr(cache, "sha256_of", sha256_of)
    return seen
