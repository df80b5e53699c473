"""hpo_analysis.load / Dataset: the documented examples run, lookups are exact, errors are clear."""

from __future__ import annotations

import doctest
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

import hpo_analysis
from hpo_analysis import api

from .conftest import REPO, strict_json


@pytest.fixture()
def in_workdir(example_out: Path, tmp_path: Path) -> Iterator[Path]:
    """A working directory whose outputs/analysis is the extracted example."""
    (tmp_path / "outputs").mkdir()
    os.symlink(example_out, tmp_path / "outputs" / "analysis")
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        yield tmp_path
    finally:
        os.chdir(cwd)


def test_module_examples_run(in_workdir: Path) -> None:
    result = doctest.testmod(api, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted >= 8
    assert result.failed == 0


def test_readme_api_examples_run(in_workdir: Path) -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Exploring the dataset", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    assert blocks
    for block in blocks:
        proc = subprocess.run(
            [sys.executable, "-c", block], cwd=in_workdir, capture_output=True, text=True
        )
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.strip()


def test_trial_is_the_record_of_the_full_json(example_out: Path) -> None:
    ds = hpo_analysis.load(example_out)
    full = strict_json(example_out / "hpo_full.json")
    for record in (full["trials"][0], full["trials"][311], full["trials"][-1]):
        assert ds.trial(record["study"], record["trial_num"]) == record


def test_tables_are_typed_and_complete(example_out: Path) -> None:
    ds = hpo_analysis.load(example_out)
    assert len(ds.trials) == 600 and len(ds.diverged) == 14
    assert ds.trials["trial_num"].dtype == pd.Int64Dtype()
    assert ds.trials["diverged"].dtype == pd.BooleanDtype()
    assert ds.trials["objective"].dtype == "float64"
    assert list(ds.curves.columns[:3]) == ["study", "trial_num", "epoch"]
    assert ds.metadata["n_trials"] == 600


def test_curve_matches_the_curves_table(example_out: Path) -> None:
    ds = hpo_analysis.load(example_out)
    curves = ds.curves
    row = ds.diverged.iloc[0]
    one = ds.curve(row["study"], int(row["trial_num"]))
    expected = curves[(curves.study == row["study"]) & (curves.trial_num == row["trial_num"])]
    assert one["epoch"].tolist() == expected["epoch"].tolist()
    assert one["val_loss"].isna().sum() == expected["val_loss"].isna().sum() > 0


def test_sql_sees_the_three_tables(example_out: Path) -> None:
    ds = hpo_analysis.load(example_out)
    counts = ds.sql(
        "SELECT (SELECT count(*) FROM trials) AS t, (SELECT count(*) FROM diverged) AS d, "
        "(SELECT count(*) FROM curves) AS c"
    )
    assert counts.iloc[0].tolist() == [600, 14, len(ds.curves)]
    ds.close()


def test_unknown_trial_is_a_key_error(example_out: Path) -> None:
    ds = hpo_analysis.load(example_out)
    with pytest.raises(KeyError, match="no trial 9999"):
        ds.trial("phase6a_2B_h1_threshold_1pct", 9999)
    with pytest.raises(KeyError, match="no trial 0 in study 'nope'"):
        ds.curve("nope", 0)


def test_sql_error_is_one_line(example_out: Path) -> None:
    ds = hpo_analysis.load(example_out)
    with pytest.raises(hpo_analysis.QueryError) as info:
        ds.sql("SELECT nonexistent_column FROM trials")
    assert "\n" not in str(info.value)
    assert "nonexistent_column" in str(info.value)


def test_load_errors_say_what_is_wrong(tmp_path: Path, example_out: Path) -> None:
    with pytest.raises(hpo_analysis.DatasetError, match="no such directory"):
        hpo_analysis.load(tmp_path / "missing")
    partial = tmp_path / "partial"
    shutil.copytree(example_out, partial)
    (partial / "curves.parquet").unlink()
    with pytest.raises(hpo_analysis.DatasetError, match=r"missing curves\.parquet"):
        hpo_analysis.load(partial)


def test_missing_duckdb_gives_an_install_hint(
    example_out: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "duckdb", None)
    ds = hpo_analysis.load(example_out)
    with pytest.raises(api.MissingDependency, match=r"hpo-analysis\[query\]"):
        ds.sql("SELECT 1")


def test_one_dataset_error_for_every_reader() -> None:
    """The API, the MCP server and the command line raise and catch one DatasetError."""
    from hpo_analysis import mcp_server
    from hpo_analysis.errors import HpoAnalysisError

    assert mcp_server.DatasetError is api.DatasetError is hpo_analysis.DatasetError
    assert issubclass(api.DatasetError, HpoAnalysisError)
    assert mcp_server.QueryRefused is api.QueryRefused
    assert issubclass(api.QueryRefused, api.DatasetError)
    assert mcp_server.check_sql is api.check_sql


def test_locked_connection_reads_the_tables_and_nothing_else(example_out: Path) -> None:
    pytest.importorskip("duckdb")
    import duckdb

    ds = hpo_analysis.load(example_out)
    con = ds.locked_connection()
    # a recorded NaN and a missing value stay apart
    nan, null = con.execute(
        "SELECT count(*) FILTER (WHERE isnan(val_loss)), count(*) FILTER (WHERE val_loss IS NULL)"
        " FROM curves WHERE study = 'phase6a_2B_h1_threshold_1pct' AND trial_num = 2"
    ).fetchone() or (0, 0)
    assert (nan, null) == (3, 0)
    assert con.execute("SELECT count(*) FROM trials").fetchone() == (600,)
    for sql in (
        "SELECT * FROM read_csv('/etc/passwd')",
        f"SELECT * FROM read_parquet('{example_out / 'trials.parquet'}')",
        "SET enable_external_access = true",
    ):
        with pytest.raises(duckdb.Error):
            con.execute(sql)
    with pytest.raises(duckdb.Error):
        con.execute("DELETE FROM trials")
    assert con.execute("SELECT count(*) FROM trials").fetchone() == (600,)


def test_study_summaries_are_kept_by_extract(example_out: Path) -> None:
    """What the MCP overview needs was computed by extract and equals a pass over the table."""
    ds = hpo_analysis.load(example_out)
    kept = ds.study_summaries()
    trials = ds.trials
    assert kept["factors"] == ["budget", "horizon"]
    assert kept["states"] == trials["state"].value_counts(sort=False).to_dict()
    assert len(kept["studies"]) == trials["study"].nunique() == 12
    for entry in kept["studies"]:
        mine = trials[trials["study"] == entry["study"]]
        best = mine[mine["rank_in_study"] == 1].iloc[0]
        assert entry["best_trial"] == best["trial_num"]
        assert entry["best_objective"] == best["objective"]
        assert entry["factors"] == {"budget": best["budget"], "horizon": best["horizon"]}
        assert entry["n_trials"] == len(mine)
