"""The MCP server end to end: the SDK's own client drives ``python -m hpo_analysis mcp DIR``.

Every answer is checked against the dataset files (hpo_summary.csv, hpo_full.json,
diverged_analysis.csv) read independently with pandas and json.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from hpo_analysis.mcp_server import (
    QUERY_DEFAULT_ROWS,
    QUERY_MAX_BYTES,
    README_URI,
    SCHEMA_URI,
    DatasetError,
    DatasetService,
    QueryRefused,
    check_sql,
    downsample,
    dumps,
)

from .conftest import EXAMPLE, REPO, run_cli, strict_json

mcp = pytest.importorskip("mcp")
anyio_from_thread = pytest.importorskip("anyio.from_thread")

READ_TOOLS = {"overview", "query", "get_trial", "get_curve", "compare_trials", "findings"}


class ToolFailed(Exception):
    """The server answered a tool call with isError (a clear message, not a crash)."""


class Client:
    """A synchronous face on one MCP client session over stdio (the SDK's stdio_client).

    The session lives in an anyio blocking portal's event loop, so one server process can serve
    many tests.
    """

    def __init__(self, *args: str) -> None:
        from mcp import ClientSession, StdioServerParameters
        from mcp.client.stdio import stdio_client

        env = {"SOURCE_DATE_EPOCH": "1767225600"}
        if "PYTHONPATH" in os.environ:
            env["PYTHONPATH"] = os.environ["PYTHONPATH"]
        params = StdioServerParameters(
            command=sys.executable, args=["-m", "hpo_analysis", "mcp", *args], env=env, cwd=REPO
        )
        self._stack = ExitStack()
        self.portal = self._stack.enter_context(anyio_from_thread.start_blocking_portal())
        # the server's stderr, shown when a test fails
        self.errlog = self._stack.enter_context(tempfile.TemporaryFile("w+"))
        read, write = self._stack.enter_context(
            self.portal.wrap_async_context_manager(stdio_client(params, errlog=self.errlog))
        )[:2]
        self.session = self._stack.enter_context(
            self.portal.wrap_async_context_manager(ClientSession(read, write))
        )
        try:
            self.portal.call(self.session.initialize)
        except Exception:
            self.errlog.seek(0)
            sys.stderr.write(self.errlog.read())
            self.close()
            raise

    def close(self) -> None:
        self._stack.close()

    def tools(self) -> dict[str, dict[str, Any]]:
        result = self.portal.call(self.session.list_tools)
        return {t.name: t.model_dump(by_alias=True) for t in result.tools}

    def call_raw(self, name: str, arguments: dict[str, Any] | None = None) -> dict[str, Any]:
        result = self.portal.call(self.session.call_tool, name, arguments or {})
        return result.model_dump(by_alias=True)

    def call(self, name: str, **arguments: Any) -> Any:
        result = self.call_raw(name, arguments)
        text = "".join(c.get("text", "") for c in result["content"])
        if result.get("isError"):
            raise ToolFailed(text)
        return json.loads(text)

    def error(self, name: str, **arguments: Any) -> str:
        with pytest.raises(ToolFailed) as caught:
            self.call(name, **arguments)
        return str(caught.value)

    def read_resource(self, uri: str) -> str:
        result = self.portal.call(self.session.read_resource, uri)
        return "".join(getattr(c, "text", "") for c in result.contents)

    def resources(self) -> list[str]:
        result = self.portal.call(self.session.list_resources)
        return [str(r.uri) for r in result.resources]


@pytest.fixture(scope="module")
def client(example_out: Path) -> Iterator[Client]:
    session = Client(str(example_out))
    yield session
    session.close()


@pytest.fixture(scope="module")
def summary(example_out: Path) -> pd.DataFrame:
    return pd.read_csv(example_out / "hpo_summary.csv")


@pytest.fixture(scope="module")
def diverged(example_out: Path) -> pd.DataFrame:
    return pd.read_csv(example_out / "diverged_analysis.csv")


@pytest.fixture(scope="module")
def full_records(example_out: Path) -> dict[tuple[str, int], dict[str, Any]]:
    data = strict_json(example_out / "hpo_full.json")
    return {(t["study"], t["trial_num"]): t for t in data["trials"]}


# --- tools and schemas ----------------------------------------------------------------------


def test_tools_have_descriptions_and_argument_schemas(client: Client) -> None:
    tools = client.tools()
    assert set(tools) == READ_TOOLS  # annotate only with --allow-annotate
    for name, tool in tools.items():
        assert len(tool["description"]) > 80, name
        assert tool["inputSchema"]["type"] == "object", name
        assert tool["annotations"]["readOnlyHint"] is True, name
    assert tools["query"]["inputSchema"]["required"] == ["sql"]
    assert set(tools["get_trial"]["inputSchema"]["required"]) == {"study", "trial_num"}
    assert "max_points" in tools["get_curve"]["inputSchema"]["properties"]
    assert tools["compare_trials"]["inputSchema"]["properties"]["trials"]["type"] == "array"


def test_overview_is_small_and_agrees_with_the_summary(
    client: Client, summary: pd.DataFrame
) -> None:
    result = client.call_raw("overview")
    text = result["content"][0]["text"]
    assert len(text.encode("utf-8")) < 8_000
    overview = json.loads(text)
    assert overview["n_trials"] == len(summary)
    assert overview["n_studies"] == summary["study"].nunique()
    assert overview["n_diverged"] == int(summary["diverged"].sum())
    assert set(overview["factors"]["budget"]) == set(summary["budget"])
    assert set(overview["factors"]["horizon"]) == set(summary["horizon"])
    by_study = summary.groupby("study")
    for study in overview["studies"]:
        rows = by_study.get_group(study["study"])
        assert study["n_trials"] == len(rows)
        assert study["n_diverged"] == int(rows["diverged"].sum())
        assert study["budget"] == rows["budget"].iloc[0]
        best = rows.loc[rows["rank_in_study"] == 1, "trial_num"]
        assert study["best_trial"] in set(best)
    assert overview["tables"]["trials"]["rows"] == len(summary)
    assert "diverge_epoch" in overview["tables"]["diverged"]["columns"]


# --- query ----------------------------------------------------------------------------------


def test_query_agrees_with_pandas(client: Client, summary: pd.DataFrame) -> None:
    result = client.call(
        "query",
        sql="SELECT study, count(*) AS n, sum(CASE WHEN diverged THEN 1 ELSE 0 END) AS n_div, "
        "min(val_loss) AS best FROM trials GROUP BY study ORDER BY study",
    )
    assert result["columns"] == ["study", "n", "n_div", "best"]
    assert result["truncated"] is False
    expected = summary.groupby("study").agg(
        n=("trial_num", "size"), n_div=("diverged", "sum"), best=("val_loss", "min")
    )
    assert [r[0] for r in result["rows"]] == list(expected.index)
    for study, n, n_div, best in result["rows"]:
        assert n == expected.loc[study, "n"]
        assert n_div == expected.loc[study, "n_div"]
        assert best == pytest.approx(expected.loc[study, "best"])


def test_readme_example_which_2b_trials_diverged_before_epoch_5(
    client: Client, diverged: pd.DataFrame, summary: pd.DataFrame
) -> None:
    """The seed question, answered with the SQL the README shows."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Exploring in a chat session (MCP)", 1)[1].split("\n## ", 1)[0]
    (sql,) = re.findall(r"```sql\n(.*?)```", section, flags=re.S)
    sql = "\n".join(line.strip() for line in sql.splitlines())
    result = client.call("query", sql=sql)
    assert result["columns"] == ["study", "trial_num", "diverge_epoch", "lr"]
    lr = summary.set_index(["study", "trial_num"])["lr"]
    expected = diverged[(diverged["budget"] == "2B") & (diverged["diverge_epoch"] < 5)]
    expected = expected.sort_values(["diverge_epoch", "study", "trial_num"])
    assert len(expected) > 0
    assert [(s, n, int(e), pytest.approx(x)) for s, n, e, x in result["rows"]] == [
        (r.study, r.trial_num, int(r.diverge_epoch), lr[(r.study, r.trial_num)])
        for r in expected.itertuples()
    ]


def test_query_returns_non_finite_curve_values_as_strings(
    client: Client, full_records: dict[tuple[str, int], dict[str, Any]]
) -> None:
    result = client.call(
        "query",
        sql="SELECT study, trial_num, epoch, val_loss FROM curves "
        "WHERE isnan(val_loss) OR isinf(val_loss) ORDER BY study, trial_num, epoch",
        max_rows=1000,
    )
    expected = sorted(
        (key[0], key[1], point["epoch"], point["value"])
        for key, record in full_records.items()
        for point in record.get("learning_curve_non_finite") or []
        if point["metric"] == "val_loss"
    )
    assert expected
    assert [tuple(r) for r in result["rows"]] == expected


@pytest.mark.parametrize(
    "sql",
    [
        "COPY trials TO '{tmp}/leak.csv'",
        "COPY (SELECT * FROM trials) TO '{tmp}/leak.parquet' (FORMAT parquet)",
        "ATTACH '{tmp}/other.duckdb' AS other",
        "INSTALL httpfs",
        "LOAD httpfs",
        "PRAGMA database_list",
        "SET enable_external_access = true",
        "RESET lock_configuration",
        "CREATE TABLE {name} AS SELECT 1 AS x",
        "INSERT INTO trials (study) VALUES ('x')",
        "DELETE FROM trials",
        "DROP TABLE trials",
        "UPDATE trials SET lr = 0",
        "EXPORT DATABASE '{tmp}/export'",
        "SELECT 1; DROP TABLE trials",
        "SELECT * FROM read_csv('/etc/passwd')",
        "SELECT * FROM read_csv_auto('{dataset}/hpo_summary.csv')",
        "SELECT * FROM read_parquet('{dataset}/trials.parquet')",
        "SELECT * FROM '{dataset}/hpo_summary.csv'",
        "SELECT * FROM read_text('/etc/hostname')",
        "SELECT * FROM read_blob('/etc/hostname')",
        "SELECT * FROM glob('/*')",
        "WITH x AS (SELECT * FROM read_json('{dataset}/hpo_full.json')) SELECT * FROM x",
    ],
)
def test_query_refuses_writes_files_and_settings(
    client: Client, example_out: Path, tmp_path: Path, sql: str
) -> None:
    text = sql.format(tmp=tmp_path, dataset=example_out, name=f"t_{tmp_path.name}")
    message = client.error("query", sql=text)
    assert message
    assert not any(tmp_path.iterdir())  # nothing written
    # the tables are untouched and the server still answers
    assert client.call("query", sql="SELECT count(*) FROM trials")["rows"] == [[600]]


def test_query_refusal_messages_say_why(client: Client) -> None:
    assert "only one read-only SELECT" in client.error("query", sql="COPY trials TO 'x.csv'")
    assert "only one statement" in client.error("query", sql="SELECT 1; SELECT 2")
    assert "reads no files" in client.error("query", sql="SELECT * FROM read_csv('/etc/passwd')")
    assert "does not exist" in client.error("query", sql="SELECT * FROM no_such_table")
    assert "does not parse" in client.error("query", sql="SELEC 1")


def test_query_results_are_capped_with_a_marker(client: Client) -> None:
    n_points = client.call("query", sql="SELECT count(*) FROM curves")["rows"][0][0]
    assert n_points > 1000
    by_rows = client.call("query", sql="SELECT * FROM curves")
    assert by_rows["truncated"] is True
    assert by_rows["row_count"] == len(by_rows["rows"]) == QUERY_DEFAULT_ROWS
    assert by_rows["truncated_reason"].startswith("TRUNCATED")
    assert "max_rows" in by_rows["truncated_reason"]
    more = client.call("query", sql="SELECT * FROM curves", max_rows=1000)
    assert more["truncated"] is True
    rows_bytes = sum(len(json.dumps(r, separators=(",", ":"))) + 1 for r in more["rows"])
    assert rows_bytes <= QUERY_MAX_BYTES
    assert "bytes" in more["truncated_reason"]
    assert 0 < more["row_count"] < 1000
    exact = client.call("query", sql="SELECT * FROM curves LIMIT 7", max_rows=7)
    assert exact["truncated"] is False and exact["row_count"] == 7


def test_out_of_range_arguments_are_refused_by_the_schema(client: Client) -> None:
    assert client.error("query", sql="SELECT 1", max_rows=100_000)
    assert client.error("get_trial", study="x", trial_num=-1)


# --- trials, curves, comparisons ------------------------------------------------------------


def _a_diverged_trial(diverged: pd.DataFrame) -> tuple[str, int]:
    row = diverged.sort_values(["study", "trial_num"]).iloc[0]
    return str(row["study"]), int(row["trial_num"])


def test_get_trial_is_the_full_record(
    client: Client,
    diverged: pd.DataFrame,
    full_records: dict[tuple[str, int], dict[str, Any]],
) -> None:
    study, number = _a_diverged_trial(diverged)
    expected = full_records[(study, number)]
    whole = client.call("get_trial", study=study, trial_num=number, include_curve=True)
    assert whole == expected
    short = client.call("get_trial", study=study, trial_num=number)
    assert "learning_curve" not in short
    assert str(len(expected["learning_curve"])) in short["learning_curve_omitted"]
    assert {k: v for k, v in expected.items() if k != "learning_curve"} == {
        k: v for k, v in short.items() if k != "learning_curve_omitted"
    }


def test_unknown_trials_are_clear_tool_errors(client: Client, summary: pd.DataFrame) -> None:
    study = str(summary["study"].iloc[0])
    message = client.error("get_trial", study=study, trial_num=99_999)
    assert "no trial 99999" in message and study in message
    message = client.error("get_curve", study=study[:-1], trial_num=0)
    assert "no study" in message and study in message  # suggests the close name
    assert "STUDY/TRIAL_NUM" in client.error("compare_trials", trials=["not-a-reference"])
    assert client.call("overview")["n_trials"] == len(summary)  # still serving


def test_get_curve_whole_and_downsampled(
    client: Client,
    diverged: pd.DataFrame,
    full_records: dict[tuple[str, int], dict[str, Any]],
) -> None:
    study, number = _a_diverged_trial(diverged)
    record = full_records[(study, number)]
    non_finite = {
        (p["epoch"], p["metric"]): p["value"] for p in record["learning_curve_non_finite"]
    }
    curve = client.call("get_curve", study=study, trial_num=number)
    columns = curve["columns"]
    assert columns[0] == "epoch"
    assert len(curve["rows"]) == len(record["learning_curve"])
    for row, point in zip(curve["rows"], record["learning_curve"], strict=True):
        assert row[0] == point["epoch"]
        for metric, value in zip(columns[1:], row[1:], strict=True):
            if (point["epoch"], metric) in non_finite:
                assert value == non_finite[(point["epoch"], metric)]
            else:
                assert value == point.get(metric)
    summary = curve["summary"]
    diverge_epoch = int(
        diverged.set_index(["study", "trial_num"]).loc[(study, number)].diverge_epoch
    )
    assert summary["diverge_epoch"] == diverge_epoch
    assert summary["best_epoch"] == record["results"]["best_epoch"]
    assert summary["n_epochs"] == len(record["learning_curve"])

    small = client.call("get_curve", study=study, trial_num=number, max_points=3)
    epochs = [row[0] for row in small["rows"]]
    bad_epochs = {epoch for epoch, _ in non_finite}
    first, last = record["learning_curve"][0]["epoch"], record["learning_curve"][-1]["epoch"]
    assert {first, last, summary["best_epoch"], diverge_epoch} <= set(epochs)
    assert min(bad_epochs) in epochs and max(bad_epochs) in epochs
    assert epochs == sorted(epochs)
    assert len(epochs) < len(record["learning_curve"])
    assert "downsampled" in small
    only_val = client.call("get_curve", study=study, trial_num=number, metrics=["val_loss"])
    assert only_val["columns"] == ["epoch", "val_loss"]
    assert "unknown metric" in client.error(
        "get_curve", study=study, trial_num=number, metrics=["nope"]
    )


def test_get_curve_downsamples_a_long_curve_evenly(client: Client, summary: pd.DataFrame) -> None:
    longest = summary.sort_values(["epochs_trained", "study", "trial_num"]).iloc[-1]
    study, number = str(longest["study"]), int(longest["trial_num"])
    curve = client.call("get_curve", study=study, trial_num=number, max_points=10)
    epochs = [row[0] for row in curve["rows"]]
    assert len(epochs) == 10
    assert epochs[0] == 0 and epochs[-1] == int(longest["epochs_trained"]) - 1
    assert int(longest["best_epoch"]) in epochs
    gaps = [b - a for a, b in zip(epochs, epochs[1:], strict=False)]
    assert max(gaps) <= 3 * int(longest["epochs_trained"]) / 10


def test_compare_a_diverged_trial_with_its_similar_successful_trial(
    client: Client, summary: pd.DataFrame, diverged: pd.DataFrame
) -> None:
    study, number = _a_diverged_trial(diverged)
    row = diverged.set_index(["study", "trial_num"]).loc[(study, number)]
    similar = str(row["similar_successful_trial"])
    result = client.call("compare_trials", trials=[f"{study}/{number}"])
    assert result["trials"] == [f"{study}/{number}", similar]
    rows = summary.set_index(["study", "trial_num"])
    keys = [(study, number), (similar.rsplit("/", 1)[0], int(similar.rsplit("/", 1)[1]))]
    for section, column in [
        ("architecture", "d_model"),
        ("architecture", "n_layers"),
        ("hyperparameters", "lr"),
        ("outcome", "diverged"),
        ("curve", "best_epoch"),
        ("curve", "epochs_trained"),
    ]:
        expected = [rows.loc[k, column] for k in keys]
        assert result[section][column] == pytest.approx([e.item() for e in expected]), column
    assert result["curve"]["diverge_epoch"] == [int(row["diverge_epoch"]), None]
    assert "diverged" in result["differs"]
    assert ("d_model" in result["differs"]) == (len(set(result["architecture"]["d_model"])) > 1)

    three = client.call(
        "compare_trials", trials=[f"{k[0]}/{k[1]}" for k in rows.index[:3].tolist()]
    )
    assert len(three["trials"]) == 3 and "added" not in three
    assert three["hyperparameters"]["lr"] == pytest.approx(rows["lr"].iloc[:3].tolist())


def test_compare_one_successful_trial_asks_for_more(client: Client, summary: pd.DataFrame) -> None:
    ok = summary[~summary["diverged"]].iloc[0]
    message = client.error("compare_trials", trials=[f"{ok['study']}/{ok['trial_num']}"])
    assert "two or more" in message


# --- findings and resources -----------------------------------------------------------------


def test_findings_are_read_from_findings_json(client: Client, example_out: Path) -> None:
    path = example_out / "findings.json"
    if not path.exists():
        assert "findings.json does not exist" in client.error("findings")
        return
    data = json.loads(path.read_text(encoding="utf-8"))
    findings = data["findings"] if isinstance(data, dict) else data
    listed = client.call("findings")
    assert {k: v for k, v in listed.items() if k not in ("findings", "more")} == {
        k: v for k, v in data.items() if k != "findings"
    }
    assert [(f["id"], f["sentence"], f["n"], f["table_rows"]) for f in listed["findings"]] == [
        (f["id"], f["sentence"], f["n"], len(f["rows"])) for f in findings
    ]
    first = findings[0]
    assert client.call("findings", id=str(first["id"])) == first
    assert "no finding" in client.error("findings", id="no-such-finding")
    overview = client.call("overview")
    assert [f["id"] for f in overview["findings"]] == [f["id"] for f in findings]
    for short, finding in zip(overview["findings"], findings, strict=True):
        assert finding["sentence"].startswith(short["answer"].removesuffix(" …"))


def test_a_long_finding_table_is_cut_with_its_total(tmp_path: Path, example_out: Path) -> None:
    """A finding of a thousand studies can hold thousands of rows: one answer carries the first
    FINDING_MAX_ROWS of them and says how many there are and where the rest are."""
    from hpo_analysis.mcp_server import FINDING_MAX_ROWS, DatasetService

    shutil.copytree(example_out, tmp_path / "d")
    path = tmp_path / "d" / "findings.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    long = next(f for f in data["findings"] if f["rows"])
    long["rows"] = [list(long["rows"][0])] * (FINDING_MAX_ROWS + 5)
    path.write_text(json.dumps(data), encoding="utf-8")
    answer = DatasetService(tmp_path / "d").findings(str(long["id"]))
    assert len(answer["rows"]) == FINDING_MAX_ROWS
    assert answer["rows_total"] == FINDING_MAX_ROWS + 5
    assert "findings.json" in answer["rows_cut"]
    short = next(f for f in data["findings"] if f is not long)
    assert DatasetService(tmp_path / "d").findings(str(short["id"])) == short


def test_resources_are_the_readme_and_the_json_schema(client: Client, example_out: Path) -> None:
    assert set(client.resources()) == {README_URI, SCHEMA_URI}
    readme = client.read_resource(README_URI)
    assert readme == (example_out / "README.md").read_text(encoding="utf-8")
    assert "| `diverge_epoch` |" in readme
    schema = client.read_resource(SCHEMA_URI)
    assert json.loads(schema) == json.loads(
        (example_out / "hpo_full.schema.json").read_text(encoding="utf-8")
    )


# --- annotate, a dataset that appears later, re-extraction ----------------------------------


def test_annotate_needs_the_flag(client: Client) -> None:
    assert "annotate" not in client.tools()
    assert client.call_raw("annotate", {"study": "x", "trial_num": 1, "tag": "t"})["isError"]


def test_server_started_before_the_dataset_then_annotations_survive_reextract(
    tmp_path: Path,
) -> None:
    out = tmp_path / "analysis"
    session = Client(str(out), "--allow-annotate")
    try:
        assert "annotate" in session.tools()
        assert "no such dataset directory" in session.error("overview")
        assert "no such dataset directory" in session.error("query", sql="SELECT 1")

        def extract() -> None:
            # the report is not what this checks
            result = run_cli("extract", str(EXAMPLE), "--out", str(out), "-q", "--no-report")
            assert result.returncode == 0, result.stderr

        extract()
        overview = session.call("overview")  # the server picks the new dataset up
        assert overview["n_trials"] == 600 and overview["annotations"] == 0
        study = overview["studies"][0]["study"]
        saved = session.call(
            "annotate", study=study, trial_num=3, tag="lr-too-high", note="NaN from epoch 3"
        )
        assert saved["trial_in_dataset"] is True
        assert [a["tag"] for a in saved["annotations"]] == ["lr-too-high"]
        lines = (out / "annotations.csv").read_text(encoding="utf-8").splitlines()
        assert lines[1].startswith(f"{study},3,lr-too-high,NaN from epoch 3,")
        record = session.call("get_trial", study=study, trial_num=3)
        assert record["annotations_now"][0]["tag"] == "lr-too-high"  # before re-extraction

        extract()
        record = session.call("get_trial", study=study, trial_num=3)
        assert [a["tag"] for a in record["annotations"]] == ["lr-too-high"]
        assert "annotations_now" not in record
        tags = session.call(
            "query", sql=f"SELECT tags, note FROM trials WHERE study = '{study}' AND trial_num = 3"
        )
        assert tags["rows"] == [["lr-too-high", "NaN from epoch 3"]]
        assert session.call("overview")["annotations"] == 1

        removed = session.call("annotate", study=study, trial_num=3, tag="lr-too-high", remove=True)
        assert removed["annotations"] == []
        assert "give a tag" in session.error("annotate", study=study, trial_num=3)
    finally:
        session.close()


def test_read_only_server_writes_nothing(client: Client, example_out: Path) -> None:
    before = {p: p.stat().st_mtime_ns for p in example_out.rglob("*")}
    client.call("overview")
    client.call("query", sql="SELECT * FROM trials LIMIT 3")
    assert {p: p.stat().st_mtime_ns for p in example_out.rglob("*")} == before


# --- without the SDK ------------------------------------------------------------------------


def test_missing_mcp_package_gives_an_install_hint(tmp_path: Path) -> None:
    code = (
        "import sys; sys.modules['mcp'] = None\n"
        "from hpo_analysis.cli import main\n"
        f"sys.exit(main(['mcp', {str(tmp_path)!r}]))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=REPO
    )
    assert proc.returncode == 2
    assert "pip install 'hpo-analysis[mcp]'" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stdout == ""


def test_cli_help_shows_an_example() -> None:
    result = run_cli("mcp", "--help")
    assert result.returncode == 0
    assert "hpo-analysis mcp outputs/analysis" in result.stdout


# --- the pieces, in process -----------------------------------------------------------------


@given(
    n=st.integers(min_value=1, max_value=400),
    max_points=st.integers(min_value=2, max_value=60),
    keep=st.lists(st.integers(min_value=0, max_value=450), max_size=8),
    offset=st.integers(min_value=-3, max_value=3),
)
def test_downsample_keeps_the_points_that_matter(
    n: int, max_points: int, keep: list[int], offset: int
) -> None:
    epochs = list(range(offset, offset + n))
    kept = downsample(epochs, max_points, keep=keep)
    required = {epochs[0], epochs[-1]} | (set(keep) & set(epochs))
    assert kept == sorted(set(kept)) and set(kept) <= set(epochs)
    assert required <= set(kept)
    assert len(kept) == (n if n <= max_points else max(max_points, len(required)))


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT 1",
        "  with t AS (SELECT * FROM trials) SELECT count(*) FROM t ;  ",
        "FROM trials LIMIT 2",
        "DESCRIBE trials",
        "SUMMARIZE curves",
        "-- a comment\nSELECT 2 /* inline */",
        "PIVOT trials ON budget IN ('2M', '2B') USING count(*)",
    ],
)
def test_check_sql_accepts_one_select(sql: str) -> None:
    statement = check_sql(sql)
    assert not statement.endswith(";")


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("", "empty SQL"),
        ("SELECT 1; SELECT 2", "only one statement"),
        ("EXPLAIN SELECT 1", "got EXPLAIN"),
        ("PIVOT trials ON budget USING count(*)", "IN list"),
        ("CALL pragma_version()", "got CALL"),
        ("SELEC 1", "does not parse"),
    ],
)
def test_check_sql_refuses_everything_else(sql: str, message: str) -> None:
    with pytest.raises(QueryRefused, match=message):
        check_sql(sql)


def test_a_runaway_query_is_interrupted(example_out: Path) -> None:
    service = DatasetService(example_out)
    with pytest.raises(DatasetError, match="stopped after"):
        service.query(
            "SELECT count(*) FROM curves a, curves b, curves c WHERE a.val_loss < b.val_loss",
            timeout=0.5,
        )
    assert service.query("SELECT count(*) FROM diverged")["rows"][0][0] > 0  # still usable


@pytest.mark.parametrize(
    "sql",
    [
        "WITH x AS (UPDATE trials SET objective = -999 RETURNING 1) SELECT count(*) FROM x",
        "WITH x AS (DELETE FROM diverged RETURNING 1) SELECT count(*) FROM x",
        "WITH x AS (INSERT INTO trials (study) VALUES ('evil') RETURNING 1) SELECT count(*) FROM x",
    ],
)
def test_writes_hidden_in_a_cte_change_nothing(example_out: Path, sql: str) -> None:
    service = DatasetService(example_out)
    before = service.query(
        "SELECT count(*), sum(objective) FROM trials UNION ALL SELECT count(*), 0 FROM diverged"
    )["rows"]
    with pytest.raises(DatasetError):
        service.query(sql)
    after = service.query(
        "SELECT count(*), sum(objective) FROM trials UNION ALL SELECT count(*), 0 FROM diverged"
    )["rows"]
    assert after == before


def test_the_byte_cap_counts_the_whole_response(example_out: Path) -> None:
    service = DatasetService(example_out)
    wide = ", ".join(f"objective AS column_with_a_long_name_{i:04d}" for i in range(300))
    result = service.query(f"SELECT {wide} FROM trials", max_rows=1000)
    assert len(dumps(result).encode("utf-8")) <= QUERY_MAX_BYTES  # what the server sends
    assert result["truncated"] is True
    alias = "a" * 1_000_000
    with pytest.raises(DatasetError, match="column names and types alone"):
        service.query(f'SELECT 1 AS "{alias}"')
    value = service.query("SELECT repeat('x', 1000000) AS v")
    assert value["rows"] == [] and value["truncated"] is True


def test_a_query_over_the_memory_limit_is_stopped(example_out: Path) -> None:
    service = DatasetService(example_out)
    with pytest.raises(DatasetError, match="working memory"):
        service.query(
            "SELECT max(length(s)) FROM "
            "(SELECT repeat('x', 100000000) || i::VARCHAR AS s FROM range(20) t(i))"
        )
    assert service.query("SELECT count(*) FROM trials")["rows"] == [[600]]


def test_a_slow_query_does_not_block_the_other_tools(example_out: Path) -> None:
    import threading
    import time

    service = DatasetService(example_out)
    study = service.overview()["studies"][0]["study"]
    started = threading.Event()

    def slow() -> None:
        started.set()
        try:
            service.query(
                "SELECT count(*) FROM curves a, curves b, curves c WHERE a.val_loss < b.val_loss",
                timeout=3.0,
            )
        except DatasetError:
            pass

    worker = threading.Thread(target=slow)
    worker.start()
    started.wait()
    time.sleep(0.3)
    begin = time.monotonic()
    service.trial(study, 0)
    service.curve(study, 0)
    service.overview()
    elapsed = time.monotonic() - begin
    worker.join()
    assert elapsed < 2.5, f"the other tools waited {elapsed:.1f} s for the query"


def test_annotate_refuses_unknown_trials_and_oversized_notes(
    tmp_path: Path, example_out: Path
) -> None:
    import shutil

    from hpo_analysis.annotations import MAX_NOTE_CHARS, read_annotations

    out = tmp_path / "analysis"
    shutil.copytree(example_out, out)  # annotate writes beside the dataset
    service = DatasetService(out)
    study = service.overview()["studies"][0]["study"]
    with pytest.raises(DatasetError, match="no trial"):
        service.annotate(study, 999, "typo", "", False)
    with pytest.raises(DatasetError, match="limit"):
        service.annotate(study, 1, "", "x" * (MAX_NOTE_CHARS + 1), False)
    assert read_annotations(out / "annotations.csv") == []
    saved = service.annotate(study, 1, "ok", "fine", False)
    assert saved["trial_in_dataset"] is True


# --- the overview comes from what extract kept -----------------------------------------------


def test_overview_reads_no_table(example_out: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """overview answers from the metadata and the Parquet footers: a pass over the trials or
    parsing findings.json (tens of MB at 1,000 studies) would fail here."""
    import pyarrow.dataset
    import pyarrow.parquet

    from hpo_analysis.api import Dataset

    expected = DatasetService(example_out).overview()

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("overview read a table or findings.json")

    monkeypatch.setattr(pyarrow.parquet, "read_table", refuse)
    monkeypatch.setattr(pyarrow.dataset, "dataset", refuse)
    monkeypatch.setattr(Dataset, "findings_document", refuse)
    fresh = DatasetService(example_out)
    assert fresh.overview() == expected
    assert expected["n_trials"] == 600 and len(expected["studies"]) == 12


def test_overview_of_a_dataset_without_the_kept_summary(tmp_path: Path, example_out: Path) -> None:
    """A dataset extracted before the per-study summary was kept gets the same overview,
    computed from its trials table."""
    import shutil

    older = tmp_path / "older"
    shutil.copytree(example_out, older)
    path = older / "hpo_full.json"
    data = path.read_bytes()
    head_end = data.index(b'"trials": [\n')
    metadata = json.loads(data[len(b'{"metadata": ') : head_end].rstrip()[:-1])
    for entry in metadata["studies"]:
        for key in ("factors", "best_trial", "best_objective"):
            del entry[key]
    del metadata["factors"], metadata["states"], metadata["finding_answers"]
    path.write_bytes(b'{"metadata": ' + json.dumps(metadata).encode() + b",\n" + data[head_end:])
    expected = DatasetService(example_out).overview()
    got = DatasetService(older).overview()
    assert got["dataset"] != expected["dataset"]
    got["dataset"] = expected["dataset"]
    assert got == expected
