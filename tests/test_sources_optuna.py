"""Optuna RDB storages (SQLite files and URLs): read-only, field by field equal to Optuna's
own ``study.trials``, clear refusals (no optuna, not an Optuna database, bad URL)."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from hpo_analysis import extract
from hpo_analysis.model import Settings
from hpo_analysis.sources import optuna_storage
from hpo_analysis.sources.discover import discover

from .conftest import REPO, read_csv, run_cli, strict_json

optuna = pytest.importorskip("optuna")


def _studies(db: Path) -> dict[str, list[Any]]:
    storage = optuna.storages.RDBStorage(f"sqlite:///{db}")
    try:
        return {
            s.study_name: optuna.load_study(study_name=s.study_name, storage=storage).trials
            for s in storage.get_all_studies()
        }
    finally:
        storage.engine.dispose()


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_sqlite_fields_equal_optuna_and_file_unchanged(optuna_runs: Path, tmp_path: Path) -> None:
    db = tmp_path / "copy of rich#1.db"  # a name that needs quoting in a SQLite URI
    db.write_bytes((optuna_runs / "rich.db").read_bytes())
    before = _digest(db)
    out = tmp_path / "out"
    run = run_cli("extract", str(db), "--out", str(out))
    assert run.returncode == 0, run.stderr
    assert _digest(db) == before
    assert [n for n in os.listdir(tmp_path) if n.startswith(db.name)] == [db.name]  # no -wal
    rows = {(r["study"], int(r["trial_num"])): r for r in read_csv(out / "hpo_summary.csv")}
    full = {(t["study"], t["trial_num"]): t for t in strict_json(out / "hpo_full.json")["trials"]}
    studies = _studies(db)
    assert {s for s, _ in rows} == set(studies)
    for study, trials in studies.items():
        for trial in trials:
            row, obj = rows[(study, trial.number)], full[(study, trial.number)]
            assert row["state"] == trial.state.name
            value = trial.values[0] if trial.values else None
            assert obj["results"]["objective"] == value
            assert obj["results"]["datetime_start"] == (
                trial.datetime_start.isoformat(timespec="microseconds")
                if trial.datetime_start
                else None
            )
            assert obj["results"]["datetime_complete"] == (
                trial.datetime_complete.isoformat(timespec="microseconds")
                if trial.datetime_complete
                else None
            )
            if "learning_curve" not in trial.user_attrs:
                curve = {p["epoch"]: p["intermediate_value"] for p in obj["learning_curve"]}
                assert curve == trial.intermediate_values
            if "hidden_size" in trial.params:  # aliases: hidden_size -> d_model, ...
                assert int(row["d_model"]) == trial.params["hidden_size"]
            if "num_layers" in trial.params:
                assert int(row["n_layers"]) == trial.params["num_layers"]
            if "x" in trial.params:
                assert float(row["param_x"]) == trial.params["x"]
            if "width_seen" in trial.user_attrs:
                assert obj["extra"]["user_attrs"]["width_seen"] == trial.user_attrs["width_seen"]
    assert {r["source_format"] for r in rows.values()} == {"Optuna storage"}
    manifest = read_csv(out / "manifest.csv")
    assert len(manifest) == 1 and manifest[0]["n_trials"] == str(len(rows))
    assert manifest[0]["sha256"] == before and manifest[0]["study"] == "(several)"


def test_sqlite_url_reads_the_same_as_the_file(optuna_runs: Path, tmp_path: Path) -> None:
    db = optuna_runs / "contract.db"
    by_file, by_url = tmp_path / "file", tmp_path / "url"
    extract([db], by_file, Settings())
    extract([f"sqlite:///{db}"], by_url, Settings())
    lineage = ("source_file", "sources")
    strip = lambda rows: [{k: v for k, v in r.items() if k not in lineage} for r in rows]  # noqa: E731
    assert strip(read_csv(by_file / "hpo_summary.csv")) == strip(
        read_csv(by_url / "hpo_summary.csv")
    )
    assert read_csv(by_url / "manifest.csv")[0]["path"] == f"sqlite:///{db}"
    assert strict_json(by_url / "hpo_full.json")["metadata"]["sources"] == [f"sqlite:///{db}"]


def test_sqlite_found_in_a_tree_among_other_files(optuna_runs: Path, tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    (tree / "a").mkdir(parents=True)
    (tree / "a" / "optuna.sqlite3").write_bytes((optuna_runs / "contract.db").read_bytes())
    (tree / "a" / "notes.db").write_text("not sqlite")  # a .db that is not SQLite
    plain = sqlite3.connect(tree / "a" / "other.db")
    plain.execute("create table runs (id integer)")
    plain.commit()
    plain.close()
    out = tmp_path / "out"
    run = run_cli("extract", str(tree), "--out", str(out))
    assert run.returncode == 0, run.stderr
    manifest = {Path(m["path"]).name: m for m in read_csv(out / "manifest.csv")}
    assert manifest["optuna.sqlite3"]["n_trials"] == "8"
    assert manifest["notes.db"]["status"] == "ignored"
    assert manifest["other.db"]["status"] == "rejected"
    assert "not one written by Optuna" in manifest["other.db"]["reason"]
    assert "other.db: cannot open the storage: no such table" in run.stderr
    assert "Traceback" not in run.stderr


def test_missing_optuna_extra_is_a_usage_error(optuna_runs: Path, tmp_path: Path) -> None:
    """Without optuna: a storage source is refused with the install hint (exit 2); a SQLite
    file inside a tree is a rejected file with the same hint; journals need no optuna."""
    block = "import sys; sys.modules['optuna'] = None; from hpo_analysis.cli import main; "
    env = {**os.environ, "SOURCE_DATE_EPOCH": "1767225600"}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-c", block + f"sys.exit(main({list(args)!r}))"],
            capture_output=True,
            text=True,
            cwd=REPO,
            env=env,
            timeout=120,
        )

    for source in (f"sqlite:///{optuna_runs / 'contract.db'}", str(optuna_runs / "contract.db")):
        run = cli("extract", source, "--out", str(tmp_path / "o"))
        assert run.returncode == 2, run.stderr
        assert "install 'hpo-analysis[optuna]'" in run.stderr
        assert "Traceback" not in run.stderr
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "study.db").write_bytes((optuna_runs / "contract.db").read_bytes())
    (tree / "journal.log").write_bytes((optuna_runs / "contract_journal.log").read_bytes())
    run = cli("extract", str(tree), "--out", str(tmp_path / "tree_out"))
    assert run.returncode == 0, run.stderr
    manifest = {Path(m["path"]).name: m for m in read_csv(tmp_path / "tree_out" / "manifest.csv")}
    assert manifest["study.db"]["status"] == "rejected"
    assert "install 'hpo-analysis[optuna]'" in manifest["study.db"]["reason"]
    assert manifest["journal.log"]["n_trials"] == "8"


def test_url_password_is_never_shown(tmp_path: Path) -> None:
    url = "postgresql://ana:s3cret-pw@127.0.0.1:9/optuna"
    out = tmp_path / "out"
    run = run_cli("extract", url, "--out", str(out))
    assert run.returncode == 0, run.stderr
    manifest = read_csv(out / "manifest.csv")
    assert manifest[0]["path"] == "postgresql://ana:***@127.0.0.1:9/optuna"
    assert manifest[0]["status"] == "rejected" and "cannot open" in manifest[0]["reason"]
    for path in out.rglob("*"):  # every output, the Parquet files and the cache included
        if path.is_file():
            assert b"s3cret-pw" not in path.read_bytes(), path.name
    assert "s3cret-pw" not in run.stderr + run.stdout
    found = list(discover(url))
    assert [(f.display, f.url, f.reader) for f in found] == [
        ("postgresql://ana:***@127.0.0.1:9/optuna", url, "optuna_storage")
    ]


def test_url_to_a_missing_sqlite_file(tmp_path: Path) -> None:
    run = run_cli("extract", f"sqlite:///{tmp_path / 'none.db'}", "--out", str(tmp_path / "o"))
    assert run.returncode == 2 and "no such SQLite file" in run.stderr


def test_url_helpers() -> None:
    assert (
        optuna_storage.mask_url("mysql+pymysql://u:p@h/db?x=1") == "mysql+pymysql://u:***@h/db?x=1"
    )
    assert optuna_storage.mask_url("postgresql://u@h/db") == "postgresql://u@h/db"
    assert optuna_storage.sqlite_file("sqlite:///:memory:") is None
    assert optuna_storage.sqlite_file("postgresql://h/db") is None
    assert not optuna_storage.is_storage_url("C:/runs/optuna.db")


def test_extracting_twice_is_byte_identical(
    optuna_runs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1767225600")
    sources = [optuna_runs / n for n in ("rich.db", "rich_journal.log", "rich.log")]
    first, second = tmp_path / "a", tmp_path / "b"
    extract(sources, first, Settings())
    extract(sources, second, Settings())
    names = sorted(p.relative_to(first) for p in first.rglob("*") if p.is_file())
    assert names == sorted(p.relative_to(second) for p in second.rglob("*") if p.is_file())
    assert Path("hpo_summary.csv") in names
    for name in names:
        assert (first / name).read_bytes() == (second / name).read_bytes(), name
