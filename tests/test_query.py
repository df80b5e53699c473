"""``hpo-analysis query``: formats, the documented example queries, and clean errors."""

from __future__ import annotations

import csv
import io
import json
import sys
from pathlib import Path

import pytest

from hpo_analysis import cli
from hpo_analysis.query import EXAMPLES

from .conftest import read_csv, run_cli


def test_table_output(example_out: Path) -> None:
    result = run_cli(
        "query",
        str(example_out),
        "SELECT study, trial_num FROM trials WHERE is_best_in_study ORDER BY study",
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["study", "trial_num"]
    assert len(lines) == 1 + 12


def test_csv_output_matches_the_summary(example_out: Path) -> None:
    result = run_cli(
        "query",
        str(example_out),
        "SELECT study, trial_num, objective FROM trials ORDER BY study, trial_num",
        "--format",
        "csv",
    )
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    summary = read_csv(example_out / "hpo_summary.csv")
    assert [(r["study"], r["trial_num"]) for r in rows] == [
        (r["study"], r["trial_num"]) for r in summary
    ]
    assert [float(r["objective"] or "nan") for r in rows][:50] == [
        float(r["objective"] or "nan") for r in summary
    ][:50]


def test_json_output_is_strict_json_lines(example_out: Path) -> None:
    result = run_cli(
        "query",
        str(example_out),
        "SELECT epoch, val_loss FROM curves WHERE study = 'phase6a_2B_h1_threshold_1pct' "
        "AND trial_num = 2 ORDER BY epoch",
        "--format",
        "json",
    )
    assert result.returncode == 0, result.stderr

    def refuse(token: str) -> None:
        raise ValueError(token)

    records = [json.loads(line, parse_constant=refuse) for line in result.stdout.splitlines()]
    assert [r["epoch"] for r in records] == list(range(17))
    assert records[-1]["val_loss"] is None  # NaN in the curve: null in strict JSON


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_documented_examples_run(example_out: Path, name: str) -> None:
    result = run_cli("query", str(example_out), EXAMPLES[name])
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) > 2


def test_default_directory_and_row_limit(example_out: Path, tmp_path: Path) -> None:
    (tmp_path / "outputs").mkdir()
    (tmp_path / "outputs" / "analysis").symlink_to(example_out)
    result = run_cli("query", "SELECT * FROM trials", "--max-rows", "5", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "595 more rows (600 in all)" in result.stdout
    assert len(result.stdout.splitlines()) == 1 + 5 + 1


def test_sql_error_is_one_line_and_exit_1(example_out: Path) -> None:
    result = run_cli("query", str(example_out), "SELECT * FROM no_such_table")
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("hpo-analysis: query error: ")
    assert "Traceback" not in result.stderr


def test_not_a_dataset_is_a_usage_error(tmp_path: Path) -> None:
    result = run_cli("query", str(tmp_path), "SELECT 1")
    assert result.returncode == 2
    assert "not an hpo-analysis dataset" in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_duckdb_prints_the_install_hint(
    example_out: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "duckdb", None)
    code = cli.main(["query", str(example_out), "SELECT 1"])
    assert code == 2  # a missing extra is a usage error, as for every command
    err = capsys.readouterr().err
    assert "pip install 'hpo-analysis[query]'" in err
    assert err.count("\n") == 1


def test_writes_are_refused_and_change_nothing(example_out: Path) -> None:
    from hpo_analysis.api import QueryError, load

    sql = "WITH x AS (UPDATE trials SET objective = -999 RETURNING 1) SELECT count(*) FROM x"
    dataset = load(example_out)
    try:
        with pytest.raises(QueryError, match="base table"):
            dataset.sql(sql)
        assert dataset.sql("SELECT min(objective) AS m FROM trials")["m"][0] > -999
    finally:
        dataset.close()
    assert run_cli("query", str(example_out), sql).returncode == 1
    copy = run_cli("query", str(example_out), f"COPY trials TO '{example_out}/x.csv'")
    assert copy.returncode == 1 and "refused" in copy.stderr
    assert not (example_out / "x.csv").exists()
