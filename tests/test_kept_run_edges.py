"""Adversarial edge cases of the kept run (``extract`` keeping the output set when nothing
changed): each test compares what the run left in DIR with what a full run (``cache=False``
into a fresh directory, same command line) writes now.

The first group are cases that left stale outputs before they were fixed (a reader whose
reading uses a file beside the one it reads, the user's matplotlib settings, two files shown
under one name, a damaged count in the run's record); the second, cases that held from the
start.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from hpo_analysis import cache, extract, pipeline
from hpo_analysis.cache import CACHE_DIR, RUN_FILE
from hpo_analysis.model import Settings

from .conftest import run_cli, write_trial

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(autouse=True)
def _settled(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1767225600")
    monkeypatch.setattr(cache, "RACY_WINDOW_NS", 0)  # what was written before a run settles


def _outputs(out: Path) -> dict[str, bytes]:
    """Every file of the output set but the cache, by relative path."""
    return {
        p.relative_to(out).as_posix(): p.read_bytes()
        for p in sorted(out.rglob("*"))
        if p.is_file() and CACHE_DIR not in p.relative_to(out).parts
    }


def _differing(out: Path, sources: list[Path], tmp_path: Path, settings: Settings) -> list[str]:
    """The output files of ``out`` that differ from a full run's written now."""
    fresh = tmp_path / "fresh-full-run"
    shutil.rmtree(fresh, ignore_errors=True)
    extract(sources, fresh, settings, command="x", cache=False)
    mine, theirs = _outputs(out), _outputs(fresh)
    return sorted(k for k in mine.keys() | theirs.keys() if mine.get(k) != theirs.get(k))


def _run(sources: list[Path], out: Path, settings: Settings | None = None) -> Any:
    return extract(sources, out, settings or Settings(), command="x")


def _dump_trial(number: int, value: float) -> dict[str, Any]:
    return {
        "number": number,
        "value": value,
        "state": "COMPLETE",
        "params": {"d_model": 96, "n_layers": 4, "learning_rate": 1e-4},
    }


def _dump_study(root: Path) -> Path:
    """A runner's study dump with a best_params.json beside it (its horizon: h1)."""
    folder = root / "hpo_20m_1_a9"
    folder.mkdir(parents=True)
    trials = [_dump_trial(0, 0.70), _dump_trial(1, 0.74), _dump_trial(2, 0.72)]
    (folder / "all_trials.json").write_text(json.dumps(trials))
    (folder / "best_params.json").write_text(
        json.dumps({"horizon": 1, "best_trial": 1, "best_value": 0.74})
    )
    return folder


def _trials_study(root: Path, study: str = "S", n: int = 3) -> Path:
    for number in range(n):
        write_trial(
            root,
            study,
            number,
            {
                "trial_number": number,
                "value": 0.5 + number / 10,
                "state": "COMPLETE",
                "params": {"lr": 0.01},
            },
        )
    return root / study


# ------------------------------------------------------------------------------------------
# FAILING: stale outputs
# ------------------------------------------------------------------------------------------


def test_single_file_dump_is_not_kept_when_best_params_beside_it_changes(tmp_path: Path) -> None:
    """The study-dump reader also reads the best_params.json beside the dump (horizon,
    factors, objective, direction); given the dump alone as the source, the best_params.json
    is not a discovered file, so only the dump's dependency digest sees it change (else the
    run would keep hpo_summary.csv with horizon h1 where a full run says h3)."""
    folder = _dump_study(tmp_path / "src")
    sources = [folder / "all_trials.json"]
    out = tmp_path / "out"
    _run(sources, out)
    (folder / "best_params.json").write_text(
        json.dumps({"horizon": 3, "best_trial": 1, "best_value": 0.74})
    )
    _run(sources, out)
    assert _differing(out, sources, tmp_path, Settings()) == []


def test_dump_results_are_not_reused_when_best_params_beside_it_changes(tmp_path: Path) -> None:
    """The same without a kept run: with the directory as the source the changed
    best_params.json is seen, and the dump's cached rows, computed with the old one, must not
    be reused by the incremental run (horizon h1 would stay)."""
    _dump_study(tmp_path / "src")
    folder = tmp_path / "src" / "hpo_20m_1_a9"
    out = tmp_path / "out"
    _run([tmp_path / "src"], out)
    (folder / "best_params.json").write_text(
        json.dumps({"horizon": 3, "best_trial": 1, "best_value": 0.74})
    )
    assert not _run([tmp_path / "src"], out).kept
    assert _differing(out, [tmp_path / "src"], tmp_path, Settings()) == []


def _meta_beside_trials(root: Path) -> Path:
    folder = _trials_study(root)
    (folder / "best_params.json").write_text(
        json.dumps({"experiment": "foo", "best_trial": 1, "best_value": 0.6, "n_trials": 3})
    )
    return folder


def test_best_params_source_is_not_kept_when_a_dump_appears_beside_it(tmp_path: Path) -> None:
    """The best_params.json reader looks for a study dump beside the file (which study it
    describes, whether it is cross-checked) and reads it; the dump is not a discovered file
    when the sources are the metadata file and the trials folder, so only the dependency
    digest sees one appear (else the manifest would keep "no study dump beside it")."""
    folder = _meta_beside_trials(tmp_path / "src")
    sources = [folder / "best_params.json", folder / "trials"]
    out = tmp_path / "out"
    _run(sources, out)
    (folder / "foo_all_trials.json").write_text(json.dumps([_dump_trial(0, 0.7)]))
    _run(sources, out)
    assert _differing(out, sources, tmp_path, Settings()) == []


def test_best_params_results_are_not_reused_when_a_dump_appears_beside_it(
    tmp_path: Path,
) -> None:
    """The same without a kept run: the new dump is discovered, so the run is not kept, and
    best_params.json's cached problems (read when it had no dump beside it) must not be
    reused (the manifest would keep "no study dump beside it; not cross-checked")."""
    folder = _meta_beside_trials(tmp_path / "src")
    out = tmp_path / "out"
    _run([tmp_path / "src"], out)
    (folder / "foo_all_trials.json").write_text(json.dumps([_dump_trial(0, 0.7)]))
    assert not _run([tmp_path / "src"], out).kept
    assert _differing(out, [tmp_path / "src"], tmp_path, Settings()) == []


def test_report_is_not_kept_when_matplotlib_rc_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The figures are drawn from matplotlib's defaults, not the process's rcParams (a
    matplotlibrc, MPLCONFIGDIR or MATPLOTLIBRC), which the run key does not hold: after a
    matplotlibrc change, the kept figures are the ones a full run draws."""
    matplotlib = pytest.importorskip("matplotlib")
    from hpo_analysis.example import generate_example

    src = tmp_path / "src"
    generate_example(src, budgets=("2M",), horizons=("h1", "h3"), trials_per_study=6, n_diverged=2)
    settings = Settings(write_report=True)
    out = tmp_path / "out"
    _run([src], out, settings)
    # what a line "axes.facecolor: eeeeee" added to the user's matplotlibrc does
    monkeypatch.setitem(matplotlib.rcParams, "axes.facecolor", "#eeeeee")
    _run([src], out, settings)
    assert _differing(out, [src], tmp_path, settings) == []


def test_two_files_with_the_same_displayed_name_are_not_confused(tmp_path: Path) -> None:
    """(Contrived.) The cache was keyed by the displayed path, and name_text is not
    injective: a name holding the byte 0xff and one holding the four characters \\xff are
    both displayed ``trial_\\xff.json``. The index keeps the last one's key for both, so after
    ``cp -p`` of that file over the other (same size and mtime, so the hash is compared, and
    it matches the other file's), every file passed the check and the run kept rows that the
    inputs no longer held. The cache now keys such a file by its bytes too."""
    trials = tmp_path / "src" / "S" / "trials"
    trials.mkdir(parents=True)
    byte_name = Path(os.fsdecode(os.fsencode(trials) + b"/trial_\xff.json"))
    text_name = trials / "trial_\\xff.json"
    for path, number in ((byte_name, 1), (text_name, 2)):
        path.write_text(json.dumps({"trial_number": number, "value": 0.5, "state": "COMPLETE"}))
    out = tmp_path / "out"
    _run([tmp_path / "src"], out)
    shutil.copy2(byte_name, text_name)  # trial 2 is gone from the inputs
    _run([tmp_path / "src"], out)
    assert _differing(out, [tmp_path / "src"], tmp_path, Settings()) == []


def test_a_damaged_count_in_the_run_record_is_not_believed(tmp_path: Path) -> None:
    """A count damaged into another integer passes every type check; run.json's own sha256
    keeps the run from reporting it (e.g. no rejected file, and ``--strict`` exiting 0 though
    a file is rejected)."""
    src = tmp_path / "src"
    _trials_study(src)
    write_trial(src, "S", 99, '{"trial_number": 99, "val')  # a rejected file
    out = tmp_path / "out"
    first = run_cli("extract", str(src), "--out", str(out), "--no-report", "--strict")
    assert first.returncode == 1
    record = out / CACHE_DIR / RUN_FILE
    record.write_bytes(record.read_bytes().replace(b'"n_rejected":1', b'"n_rejected":0', 1))
    again = run_cli("extract", str(src), "--out", str(out), "--no-report", "--strict")
    assert again.returncode == 1, again.stdout


# ------------------------------------------------------------------------------------------
# cases that held from the start
# ------------------------------------------------------------------------------------------


def test_holds_symlinked_file_retargeted(tmp_path: Path) -> None:
    """a link inside the source, retargeted to a file of other contents."""
    src = tmp_path / "src"
    trials = _trials_study(src, n=1) / "trials"
    one = write_trial(src, "store1", 2, {"trial_number": 2, "value": 0.6, "state": "COMPLETE"})
    two = write_trial(src, "store2", 2, {"trial_number": 2, "value": 0.9, "state": "COMPLETE"})
    (trials / "trial_0002.json").symlink_to(one)
    out = tmp_path / "out"
    _run([src], out)
    (trials / "trial_0002.json").unlink()
    (trials / "trial_0002.json").symlink_to(two)
    assert not _run([src], out).kept
    assert _differing(out, [src], tmp_path, Settings()) == []


@pytest.mark.parametrize("follow", [False, True], ids=["not followed", "followed"])
def test_holds_symlinked_directories_retargeted(tmp_path: Path, follow: bool) -> None:
    """the source itself a link to a directory, and (with and without
    --follow-symlinks) a study folder linked from outside the source, both retargeted to
    directories with the same file names and other contents."""
    for version, value in (("v1", 0.5), ("v2", 0.9)):
        write_trial(tmp_path / version, "S", 1, {"trial_number": 1, "value": value})
    current = tmp_path / "current"
    current.symlink_to(tmp_path / "v1")
    src = tmp_path / "src"
    src.mkdir()
    (src / "S").symlink_to(tmp_path / "v1" / "S")
    settings = Settings(follow_symlinks=follow)
    for sources in ([current], [src]):
        out = tmp_path / f"out-{sources[0].name}"
        _run(sources, out, settings)
        for link in (current, src / "S"):
            link.unlink()
        current.symlink_to(tmp_path / "v2")
        (src / "S").symlink_to(tmp_path / "v2" / "S")
        assert not _run(sources, out, settings).kept
        assert _differing(out, sources, tmp_path, settings) == []
        for link in (current, src / "S"):
            link.unlink()
        current.symlink_to(tmp_path / "v1")
        (src / "S").symlink_to(tmp_path / "v1" / "S")


def test_holds_single_file_source_that_is_a_retargeted_link(tmp_path: Path) -> None:
    """a single trial file given as the source, a link retargeted between runs."""
    one = write_trial(tmp_path / "a", "S", 1, {"trial_number": 1, "value": 0.5})
    two = write_trial(tmp_path / "b", "S", 1, {"trial_number": 1, "value": 0.8})
    link = tmp_path / "src" / "S" / "trials" / "trial_0001.json"
    link.parent.mkdir(parents=True)
    link.symlink_to(one)
    out = tmp_path / "out"
    _run([link], out)
    assert _run([link], out).kept
    link.unlink()
    link.symlink_to(two)
    assert not _run([link], out).kept
    assert _differing(out, [link], tmp_path, Settings()) == []


def test_holds_mv_of_a_file_with_the_same_size_and_mtime(tmp_path: Path) -> None:
    """another file of the same size and mtime moved over an input (other inode)."""
    src = tmp_path / "src"
    path = _trials_study(src) / "trials" / "trial_0001.json"
    other = tmp_path / "other.json"
    other.write_bytes(path.read_bytes().replace(b"0.6", b"0.7"))
    info = path.stat()
    os.utime(other, ns=(info.st_atime_ns, info.st_mtime_ns))
    out = tmp_path / "out"
    _run([src], out)
    os.replace(other, path)
    assert not _run([src], out).kept
    assert _differing(out, [src], tmp_path, Settings()) == []


def test_holds_hard_link_written_through_its_other_name(tmp_path: Path) -> None:
    """an input written through a hard link outside the source, its mtime set back
    (the inode's ctime still moves)."""
    src = tmp_path / "src"
    path = _trials_study(src) / "trials" / "trial_0001.json"
    other = tmp_path / "hard.json"
    os.link(path, other)
    out = tmp_path / "out"
    _run([src], out)
    info = path.stat()
    other.write_bytes(path.read_bytes().replace(b"0.6", b"0.7"))
    os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns))
    assert not _run([src], out).kept
    assert _differing(out, [src], tmp_path, Settings()) == []


def test_holds_non_utf8_file_name_is_kept(tmp_path: Path) -> None:
    """a file name that is not UTF-8 is kept, with the outputs of a full run."""
    trials = _trials_study(tmp_path / "src") / "trials"
    os.rename(trials / "trial_0001.json", os.fsencode(trials) + b"/trial_\xff1.json")
    out = tmp_path / "out"
    _run([tmp_path / "src"], out)
    assert _run([tmp_path / "src"], out).kept
    assert _differing(out, [tmp_path / "src"], tmp_path, Settings()) == []


def test_holds_output_directory_that_is_a_link(tmp_path: Path) -> None:
    """--out a link to a directory: kept, and still a link."""
    src = tmp_path / "src"
    _trials_study(src)
    (tmp_path / "real").mkdir()
    out = tmp_path / "out"
    out.symlink_to(tmp_path / "real")
    _run([src], out)
    assert _run([src], out).kept and out.is_symlink()


@pytest.mark.parametrize(
    "damage",
    ["fifo", "directory", "deep list", "deep object", "said ints", "result list", "empty"],
)
def test_holds_damaged_run_record_gives_a_full_run(tmp_path: Path, damage: str) -> None:
    """a run.json that is a FIFO, a directory, nested past the parser's depth or of
    the wrong types is no reason to crash: the run is a full one."""
    src = tmp_path / "src"
    _trials_study(src)
    out = tmp_path / "out"
    _run([src], out)
    record = out / CACHE_DIR / RUN_FILE
    head_line, _, body_line = record.read_bytes().partition(b"\n")
    head, good = json.loads(head_line), json.loads(body_line)

    def whole(body: dict[str, Any]) -> bytes:  # a record whose sha256 matches its body
        data = json.dumps(body).encode()
        sha = hashlib.sha256(data).hexdigest()
        return json.dumps({**head, "sha256": sha}).encode() + b"\n" + data

    record.unlink()
    if damage == "fifo":
        os.mkfifo(record)
    elif damage == "directory":
        record.mkdir()
    else:
        record.write_bytes(
            {
                "deep list": b"[" * 100_000 + b"]" * 100_000,
                "deep object": b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
                "said ints": whole({**good, "said": [1, 2]}),
                "result list": whole({**good, "result": [1]}),
                "empty": b"",
            }[damage]
        )
    result = _run([src], out)
    assert not result.kept and result.n_trials == 3
    assert _run([src], out).kept


def test_holds_config_and_study_filter_changes_give_a_run(tmp_path: Path) -> None:
    """a --config whose [fields] change, an hpo-analysis.toml in the working directory
    that changes, and another --study each give a run."""
    src = tmp_path / "src"
    for study in ("S", "T"):
        for number in range(3):
            write_trial(
                src,
                study,
                number,
                {"trial_number": number, "value": 0.5, "params": {"base_lr": 0.1, "width": 8}},
            )
    config = tmp_path / "cfg.toml"
    config.write_text('[fields]\nlr = ["base_lr"]\n')
    out = tmp_path / "out"

    def cli(*extra: str, cwd: Path | None = None) -> str:
        return run_cli(
            "extract", str(src), "--out", str(out), "--no-report", *extra, cwd=cwd
        ).stdout

    assert "; wrote " in cli("--config", str(config))
    config.write_text('[fields]\nd_model = ["width"]\n')
    assert "; wrote " in cli("--config", str(config))
    assert "; nothing changed" in cli("--config", str(config))
    work = tmp_path / "work"
    work.mkdir()
    (work / "hpo-analysis.toml").write_text("[extract]\ntop_k = 3\n")
    assert "; wrote " in cli(cwd=work)
    (work / "hpo-analysis.toml").write_text('[extract]\ntop_k = 3\nstudy = ["S"]\n')
    assert "; wrote " in cli(cwd=work)
    assert "; nothing changed" in cli(cwd=work)
    assert "; wrote " in cli("--study", "T", cwd=work)


@pytest.mark.parametrize(
    "layout",
    ["ray", "keras_tuner", "mlflow/mlflow_sqlite", "mlflow/mlflow_files"],
)
def test_holds_foreign_layouts_are_never_kept(tmp_path: Path, layout: str) -> None:
    """Ray Tune, KerasTuner and MLflow trials depend on other files than the one read:
    never kept. (A runs table is: it is read alone.)"""
    src = tmp_path / "src"
    shutil.copytree(FIXTURES / layout, src)
    out = tmp_path / "out"
    _run([src], out)
    assert not _run([src], out).kept


_LOG_LINE = (
    "[I 2021-03-01 10:00:0{n},000] Trial {n} finished with value: 0.{n} and parameters: "
    "{{'lr': 0.0{n}}}. Best is trial 0 with value: 0.0.\n"
)


def test_holds_optuna_log_appended(tmp_path: Path) -> None:
    """an Optuna log that grows between runs."""
    log = tmp_path / "src" / "run.log"
    log.parent.mkdir()
    log.write_text(
        "[I 2021-03-01 10:00:00,000] A new study created in memory with name: legacy\n"
        + _LOG_LINE.format(n=0)
    )
    out = tmp_path / "out"
    assert _run([log.parent], out).n_trials == 1
    assert _run([log.parent], out).kept
    with open(log, "a") as handle:
        handle.write(_LOG_LINE.format(n=1))
    result = _run([log.parent], out)
    assert (result.kept, result.n_trials) == (False, 2)
    assert _differing(out, [log.parent], tmp_path, Settings()) == []


def test_holds_file_deleted_between_discovery_and_the_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """an input removed after it was discovered: no crash, no kept run (the full run
    rejects it as unreadable)."""
    src = tmp_path / "src"
    path = _trials_study(src) / "trials" / "trial_0001.json"
    out = tmp_path / "out"
    _run([src], out)
    check = pipeline._dependencies  # (called after discovery, before any check)

    def removed_first(*args: Any) -> Any:
        path.unlink(missing_ok=True)
        return check(*args)

    monkeypatch.setattr(pipeline, "_dependencies", removed_first)
    result = _run([src], out)
    assert not result.kept and (result.n_trials, result.n_rejected) == (2, 1)
