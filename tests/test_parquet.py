"""The Parquet outputs and the JSON Schema: typed from schema.py, equal to the CSV/JSON, checked."""

from __future__ import annotations

import csv
import io
import json
import math
import shutil
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hpo_analysis.model import CurvePoint
from hpo_analysis.schema import COLUMNS, CURVE_METRICS, SUMMARY_COLUMNS
from hpo_analysis.schema_json import full_json_schema
from hpo_analysis.validate import validate_dir
from hpo_analysis.write import parquet
from hpo_analysis.write.parquet import arrow_type, curve_columns, decode_curve, encode_curve

from .conftest import read_csv, run_cli, strict_json, write_trial


def test_trials_parquet_types_come_from_the_schema(example_out: Path) -> None:
    schema = pq.read_schema(example_out / "trials.parquet")
    for column in SUMMARY_COLUMNS:
        assert schema.field(column.name).type == arrow_type(column.type), column.name
    diverged = pq.read_schema(example_out / "diverged.parquet")
    for column in COLUMNS:
        assert diverged.field(column.name).type == arrow_type(column.type), column.name


def test_trials_parquet_equals_the_csv(example_out: Path) -> None:
    table = pq.read_table(example_out / "trials.parquet").to_pylist()
    rows = read_csv(example_out / "hpo_summary.csv")
    assert len(table) == len(rows) == 600
    for stored, row in zip(table, rows, strict=True):
        assert (stored["study"], str(stored["trial_num"])) == (row["study"], row["trial_num"])
        for column in ("objective", "lr", "best_val_loss"):
            cell = row[column]
            assert stored[column] == (float(cell) if cell else None)
        assert stored["diverged"] == (row["diverged"] == "true")


def test_curves_parquet_is_long_sorted_and_keeps_non_finite(example_out: Path) -> None:
    table = pq.read_table(example_out / "curves.parquet")
    assert table.column_names[:3] == ["study", "trial_num", "epoch"]
    assert table.column_names[3:6] == list(CURVE_METRICS)
    for name in table.column_names[3:]:
        assert table.schema.field(name).type == pa.float64()
    keys = list(
        zip(
            table.column("study").to_pylist(),
            table.column("trial_num").to_pylist(),
            table.column("epoch").to_pylist(),
            strict=True,
        )
    )
    assert keys == sorted(keys)
    trials = read_csv(example_out / "hpo_summary.csv")
    assert table.num_rows == sum(int(t["epochs_trained"] or 0) for t in trials)
    # every non-finite value the JSON lists is NaN/±inf (not null) in the Parquet file
    full = strict_json(example_out / "hpo_full.json")
    listed = [
        (t["study"], t["trial_num"], item["epoch"], item["metric"], item["value"])
        for t in full["trials"]
        for item in t["learning_curve_non_finite"]
    ]
    assert listed
    rows = {(r["study"], r["trial_num"], r["epoch"]): r for r in table.to_pylist() if r["study"]}
    for study, trial_num, epoch, metric, token in listed:
        value = rows[(study, trial_num, epoch)][metric]
        assert value is not None
        if token == "NaN":
            assert math.isnan(value)
        else:
            assert value == (math.inf if token == "Infinity" else -math.inf)


def test_curve_metrics_beyond_the_standard_ones_get_columns(tmp_path: Path) -> None:
    src = tmp_path / "hpo"
    write_trial(
        src,
        "s_2M_h1",
        0,
        {
            "trial_number": 0,
            "value": 0.5,
            "learning_curve": [
                {"epoch": 0, "val_loss": 0.6, "lr": 0.01, "study": 1.0},
                {"epoch": 1, "val_loss": 0.5, "lr": None},
            ],
        },
    )
    out = tmp_path / "out"
    assert run_cli("extract", str(src), "--out", str(out)).returncode == 0
    table = pq.read_table(out / "curves.parquet")
    assert table.column_names == [
        "study",
        "trial_num",
        "epoch",
        "train_loss",
        "val_loss",
        "val_auc",
        "lr",
        "metric_study",
    ]
    assert table.column("lr").to_pylist() == [0.01, None]
    assert table.column("train_loss").to_pylist() == [None, None]
    assert table.column("metric_study").to_pylist() == [1.0, None]


_METRIC = st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True))


@given(
    st.lists(
        st.tuples(
            st.integers(-(2**63), 2**63 - 1),
            st.dictionaries(st.sampled_from(["val_loss", "a", "é"]), _METRIC),
        ),
        max_size=5,
    )
)
def test_curve_block_round_trip(points: list[tuple[int, dict[str, float | None]]]) -> None:
    curve = [CurvePoint(epoch, metrics) for epoch, metrics in points]
    epochs, metrics = decode_curve(encode_curve(curve))
    assert epochs.tolist() == [p.epoch for p in curve]
    for name, (values, valid) in metrics.items():
        for i, point in enumerate(curve):
            expected = point.metrics.get(name)
            present = valid is None or bool(valid[i])
            assert present == (expected is not None)
            if expected is not None:
                assert (math.isnan(expected) and math.isnan(values[i])) or values[i] == expected
    assert set(metrics) == {n for p in curve for n in p.metrics}


def test_curve_columns_order() -> None:
    assert curve_columns(["z", "val_loss", "a"]) == [*CURVE_METRICS, "a", "z"]


# --- JSON Schema ----------------------------------------------------------------------------


def test_schema_is_valid_and_written(example_out: Path) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    written = json.loads((example_out / "hpo_full.schema.json").read_text(encoding="utf-8"))
    assert written == full_json_schema()
    jsonschema.Draft202012Validator.check_schema(written)


def test_example_full_json_matches_the_schema_with_the_reference_validator(
    example_out: Path,
) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    validator = jsonschema.Draft202012Validator(full_json_schema())
    doc = strict_json(example_out / "hpo_full.json")
    assert list(validator.iter_errors(doc)) == []
    doc["trials"][0]["state"] = "DONE"
    doc["trials"][1]["architecture"]["d_model"] = "wide"
    del doc["trials"][2]["flags"]
    messages = [e.message for e in validator.iter_errors(doc)]
    assert len(messages) == 3


def test_schema_follows_every_column() -> None:
    trial = full_json_schema()["$defs"]["trial"]
    for column in COLUMNS:
        node = (
            trial["properties"][column.group]["properties"] if column.group else trial["properties"]
        )
        prop = node[column.name]
        json_type = {"str": "string", "int": "integer", "float": "number", "bool": "boolean"}[
            column.type
        ]
        assert prop["type"] == (json_type if not column.nullable else [json_type, "null"])
        assert column.description in prop["description"]
        if column.values:
            assert set(column.values) <= set(prop["enum"])


# --- validate sees what does not match -------------------------------------------------------


def _copy(example_out: Path, tmp_path: Path) -> Path:
    out = tmp_path / "copy"
    shutil.copytree(example_out, out)
    return out


def test_validate_catches_a_changed_parquet_value(example_out: Path, tmp_path: Path) -> None:
    out = _copy(example_out, tmp_path)
    table = pq.read_table(out / "trials.parquet")
    lr = table.column("lr").to_pylist()
    lr[5] = 123.0
    index = table.column_names.index("lr")
    pq.write_table(table.set_column(index, "lr", pa.array(lr)), out / "trials.parquet")
    failures = validate_dir(out)
    assert any("lr is" in f and "trials.parquet" in f for f in failures), failures


@pytest.mark.parametrize("row", [0, 5, 257, 599])
def test_validate_names_the_trial_of_a_change_in_any_row_group(
    example_out: Path, tmp_path: Path, row: int
) -> None:
    """trials.parquet is compared a row group at a time: a change in a later group names
    its own trial (the offset of the group counts)."""
    out = _copy(example_out, tmp_path)
    table = pq.read_table(out / "trials.parquet")
    dropout = table.column("dropout").to_pylist()
    dropout[row] = 0.123456
    index = table.column_names.index("dropout")
    changed = table.set_column(index, "dropout", pa.array(dropout))
    pq.write_table(changed, out / "trials.parquet", row_group_size=64)
    assert pq.ParquetFile(out / "trials.parquet").num_row_groups == 10
    trial = f"trial {table.column('study')[row]}/{table.column('trial_num')[row]}: dropout is"
    failures = validate_dir(out)
    assert any(f.startswith(trial) for f in failures), failures
    # unchanged, the same row groups validate
    pq.write_table(table, out / "trials.parquet", row_group_size=64)
    assert validate_dir(out) == []


def test_validate_catches_missing_curve_rows(example_out: Path, tmp_path: Path) -> None:
    out = _copy(example_out, tmp_path)
    table = pq.read_table(out / "curves.parquet")
    pq.write_table(table.slice(0, table.num_rows - 1), out / "curves.parquet")
    failures = validate_dir(out)
    assert any("curves.parquet has" in f for f in failures), failures


def test_validate_checks_the_schema(example_out: Path, tmp_path: Path) -> None:
    pytest.importorskip("jsonschema")
    out = _copy(example_out, tmp_path)
    path = out / "hpo_full.json"
    text = path.read_text(encoding="utf-8")
    path.write_text(
        text.replace('"learning_curve_non_finite":[]', '"learning_curve_non_finite":7', 1)
    )
    failures = validate_dir(out)
    assert any("schema" in f for f in failures), failures


def test_validate_reports_a_broken_full_json_layout(example_out: Path, tmp_path: Path) -> None:
    out = _copy(example_out, tmp_path)
    path = out / "hpo_full.json"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    failures = validate_dir(out)
    assert any(f.startswith("hpo_full.json:") for f in failures), failures


def test_parquet_outputs_are_deterministic(tmp_path: Path) -> None:
    from .conftest import EXAMPLE

    outs = []
    for name in ("a", "b"):
        out = tmp_path / name
        done = run_cli("extract", str(EXAMPLE), "--out", str(out), "--no-cache", "--no-report")
        assert done.returncode == 0
        outs.append(out)
    for name in ("trials.parquet", "curves.parquet", "diverged.parquet", "hpo_full.index.parquet"):
        assert (outs[0] / name).read_bytes() == (outs[1] / name).read_bytes(), name


def test_validate_reads_the_csv_with_its_types(example_out: Path, tmp_path: Path) -> None:
    out = _copy(example_out, tmp_path)
    path = out / "hpo_summary.csv"
    lines = path.read_bytes().decode("utf-8").split("\r\n")
    cells = lines[3].split(",")
    cells[4] = "wide"  # d_model
    lines[3] = ",".join(cells)
    path.write_bytes("\r\n".join(lines).encode("utf-8"))
    failures = validate_dir(out)
    assert any(f.startswith("hpo_summary.csv:") and "wide" in f for f in failures), failures


def _first_stop_reason_replaced(example_out: Path, tmp_path: Path, cell: bytes) -> Path:
    """A copy of the outputs whose CSV has ``cell`` for the first early_stopped stop_reason."""
    out = _copy(example_out, tmp_path)
    path = out / "hpo_summary.csv"
    header, _, body = path.read_bytes().partition(b"\r\n")
    assert b",early_stopped," in body
    path.write_bytes(header + b"\r\n" + body.replace(b",early_stopped,", cell, 1))
    return out


def test_validate_catches_a_changed_csv_text_cell(example_out: Path, tmp_path: Path) -> None:
    out = _first_stop_reason_replaced(example_out, tmp_path, b",completed,")
    failures = validate_dir(out)
    assert any("stop_reason" in f for f in failures), failures


def test_validate_compares_the_manifest_trial_count(example_out: Path, tmp_path: Path) -> None:
    out = _copy(example_out, tmp_path)
    path = out / "manifest.csv"
    lines = path.read_bytes().decode("utf-8").split("\r\n")
    header = lines[0].split(",")
    for number, line in enumerate(lines[1:], start=1):
        cells = next(csv.reader([line]), [])
        if (
            cells
            and cells[header.index("status")] == "ok"
            and cells[header.index("n_trials")] == "1"
        ):
            cells[header.index("n_trials")] = "3"
            buffer = io.StringIO()
            csv.writer(buffer, lineterminator="").writerow(cells)
            lines[number] = buffer.getvalue()
            break
    else:
        pytest.fail("no manifest row of one trial")
    path.write_bytes("\r\n".join(lines).encode("utf-8"))
    failures = validate_dir(out)
    assert any(
        f.startswith("trial counts disagree:")
        and "manifest.csv trials (n_trials of ok + warning rows) = 602" in f
        for f in failures
    ), failures


def test_validate_reads_a_neutralised_text_cell_back(example_out: Path, tmp_path: Path) -> None:
    # the CSV holds '=x for the text =x, which hpo_full.json and trials.parquet do not hold
    out = _first_stop_reason_replaced(example_out, tmp_path, b",'=x,")
    failures = validate_dir(out)
    assert any("stop_reason is '=x' in hpo_summary.csv" in f for f in failures), failures


def test_diverged_flags_are_checked_against_the_objective() -> None:
    from hpo_analysis.validate import _Counts

    table = pa.table(
        {
            "study": ["s"] * 5,
            "trial_num": [0, 1, 2, 3, 3],
            "objective_kind": ["finite", "finite", "nan", "missing", "finite"],
            "objective": [0.5, 12.0, None, None, 11.0],
            "diverged": [False, True, True, None, False],  # the last contradicts 11 >= 10
            "direction": ["minimize"] * 5,
            "state": ["COMPLETE"] * 5,
            "stop_reason": ["completed"] * 5,
            "source_file": ["f"] * 4 + [None],
            "sources": ["f"] * 5,
            "curve_non_finite": [0] * 5,
        }
    )
    failures = _Counts().add_table(table, {"s": (10.0, math.nan)})
    assert failures == [
        "hpo_summary.csv line 6: required field source_file is empty",
        "hpo_summary.csv line 6: duplicate trial ('s', 3)",
        "hpo_summary.csv line 6: diverged=False but objective 11.0 (finite) implies True",
    ]


def test_schema_takes_the_objectives_of_multi_objective_studies(example_out: Path) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    schema = full_json_schema()
    trial_schema = {**schema["$defs"]["trial"], "$schema": schema["$schema"]}
    validator = jsonschema.Draft202012Validator(trial_schema)
    trial = strict_json(example_out / "hpo_full.json")["trials"][0]
    trial["results"]["objective_accuracy"] = 0.9
    assert list(validator.iter_errors(trial)) == []
    trial["results"]["objective_accuracy"] = "high"
    trial["results"]["objective_kind"] = "finite"
    assert len(list(validator.iter_errors(trial))) == 1
    trial["results"]["objective_kind"] = "odd"
    assert len(list(validator.iter_errors(trial))) == 2


def _infer_type_value_by_value(values: list[Any]) -> str:
    """The rule of parquet._infer_type, applied to each value in turn."""
    present = [v for v in values if v is not None]
    if present and all(isinstance(v, bool) for v in present):
        return "bool"
    if present and all(isinstance(v, int) and not isinstance(v, bool) for v in present):
        return "int"
    if present and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in present):
        return "float"
    return "str"


_dynamic_values = st.lists(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(),
        st.text(max_size=3),
        st.lists(st.integers(), max_size=2),
        st.dictionaries(st.text(max_size=2), st.integers(), max_size=1),
    ),
    max_size=8,
)


@settings(deadline=None)  # the first example imports pyarrow
@given(_dynamic_values)
def test_inferred_type_is_the_value_by_value_rule(values: list[Any]) -> None:
    assert parquet._infer_type(values) == _infer_type_value_by_value(values)
    # text columns: the same Arrow array whether or not the values are already text
    column = parquet._column(values, "str")
    assert column.to_pylist() == [parquet._as_text(v) for v in values]


@settings(deadline=None, max_examples=60)
@given(
    rows=st.lists(
        st.fixed_dictionaries(
            {
                "study": st.sampled_from(["a", "b"]),
                "trial_num": st.one_of(st.integers(0, 9), st.integers(2**63, 2**64)),
                "objective": st.one_of(st.none(), st.floats(), st.integers(-5, 5)),
                "param_x": _dynamic_values.map(lambda v: v[0] if v else None),
            },
            optional={"param_y": st.one_of(st.none(), st.integers(), st.text(max_size=2))},
        ),
        max_size=9,
    ),
    group=st.integers(1, 4),
)
def test_trial_table_in_row_groups_is_the_one_group_table(
    rows: list[dict[str, Any]], group: int, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Above TRIAL_ROW_GROUP rows the table is written a row group at a time: the same schema
    (types decided over all rows) and values as the table built whole."""
    header = ["study", "trial_num", "objective", "param_x", "param_y"]
    path = tmp_path_factory.mktemp("groups") / "t.parquet"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(parquet, "TRIAL_ROW_GROUP", group)
        parquet.write_table(path, header, rows)
    written = pq.read_table(path)
    whole = parquet.trials_table(header, rows)
    assert written.schema.equals(whole.schema)
    assert written.to_pylist() == whole.to_pylist() or _same_with_nan(written, whole)
    expected_groups = 1 if len(rows) <= group else -(-len(rows) // group)
    assert pq.ParquetFile(path).num_row_groups == expected_groups


def _same_with_nan(a: pa.Table, b: pa.Table) -> bool:
    return repr(a.to_pylist()) == repr(b.to_pylist())


def test_inferred_type_of_numpy_scalars_is_the_value_by_value_rule() -> None:
    import numpy as np

    for values in ([np.float64(1.5), 2], [np.bool_(True)], [np.int64(3), None]):
        assert parquet._infer_type(values) == _infer_type_value_by_value(values)


def test_collector_paused_restores_the_collector_as_it_was() -> None:
    """Reading, journal replay and writing pause the collector with this one helper."""
    import gc

    from hpo_analysis.memory import collector_paused

    assert gc.isenabled()
    with collector_paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    with pytest.raises(ValueError), collector_paused():
        raise ValueError("raised while paused")
    assert gc.isenabled()
    gc.disable()
    try:
        with collector_paused():
            pass
        assert not gc.isenabled()  # a caller's own pause is left in place
    finally:
        gc.enable()


def _table_by_definition(header: list[str], rows: list[dict[str, Any]]) -> pa.Table:
    """trials_table as first written: each column from every row, typed at once."""
    from hpo_analysis.schema import BY_NAME

    arrays = []
    for name in header:
        values = [row.get(name) for row in rows]
        column = BY_NAME.get(name)
        arrays.append(
            parquet._column(values, column.type if column else parquet._infer_type(values))
        )
    return pa.Table.from_arrays(arrays, names=list(header))


_TABLE_VALUE = st.one_of(
    st.none(),
    st.integers(-(2**70), 2**70),
    st.integers(-5, 5),
    st.floats(),
    st.booleans(),
    st.text(max_size=3),
    st.sampled_from([[1], {"a": 1}, "x"]),
)
# a text, an integer, a float and a bool column of the schema, and a dynamic one
_TABLE_HEADER = ["study", "trial_num", "lr", "diverged", "param_extra"]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.dictionaries(st.sampled_from(_TABLE_HEADER), _TABLE_VALUE, max_size=5), max_size=14
    ),
    st.booleans(),
)
def test_trials_table_from_blocks_equals_column_by_column(
    rows: list[dict[str, Any]], typed_only: bool
) -> None:
    """Built a block of rows at a time (blocks of 3 rows here), the table is the one built
    column by column from every row, and is written to the same Parquet bytes."""
    from hpo_analysis.write import columns

    if typed_only:  # values of the schema columns' own types, so that no block falls back
        rows = [
            {
                "study": "s" + str(r.get("study")),
                "trial_num": r["trial_num"] if type(r.get("trial_num")) is int else None,
                "lr": r["lr"] if type(r.get("lr")) is float else None,
                "diverged": r["diverged"] if type(r.get("diverged")) is bool else None,
            }
            for r in rows
        ]
    original = columns.BLOCK_ROWS
    columns.BLOCK_ROWS = 3
    try:
        try:
            found = parquet.trials_table(_TABLE_HEADER, rows)
        except Exception as err:  # the definition must fail alike
            with pytest.raises(type(err)):
                _table_by_definition(_TABLE_HEADER, rows)
            return
    finally:
        columns.BLOCK_ROWS = original
    expected = _table_by_definition(_TABLE_HEADER, rows)
    assert found.schema == expected.schema
    assert repr(found.to_pylist()) == repr(expected.to_pylist())  # NaN as NaN
    written = []
    for table in (found, expected):
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink, compression=parquet.COMPRESSION)
        written.append(sink.getvalue().to_pybytes())
    assert written[0] == written[1]


def test_trials_table_column_with_a_long_integer_in_one_block_is_text_throughout() -> None:
    from hpo_analysis.write import columns

    rows = [{"study": "s", "trial_num": n} for n in range(7)] + [{"trial_num": 2**70}]
    original = columns.BLOCK_ROWS
    columns.BLOCK_ROWS = 3
    try:
        table = parquet.trials_table(["study", "trial_num"], rows)
    finally:
        columns.BLOCK_ROWS = original
    assert table.column("trial_num").type == pa.string()
    assert table.equals(_table_by_definition(["study", "trial_num"], rows))


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["lr", "dropout", "study", "stop_reason", "trial_num", "diverged"]),
            st.integers(0, 599),
            st.sampled_from(["value", "nan", "empty", "null", "drop", "cast"]),
        ),
        max_size=3,
    ),
    st.sampled_from([None, 64, 250]),
)
def test_parquet_columns_read_together_find_what_one_by_one_finds(
    example_out: Path, changes: list[tuple[str, int, str]], group_rows: int | None
) -> None:
    """The check of every column of a row group at once passes exactly where the column by
    column comparison finds no difference, whatever the change."""
    from hpo_analysis.validate import _columns_match, _first_difference, _read_summary

    summary = _read_summary(example_out / "hpo_summary.csv")
    table = pq.read_table(example_out / "trials.parquet")
    for name, row, change in changes:
        if name not in table.column_names:
            continue
        index = table.column_names.index(name)
        column = table.column(name)
        if change == "drop":
            table = table.remove_column(index)
            continue
        if change == "cast":
            table = table.set_column(index, name, column.cast(pa.string()))
            continue
        values = column.to_pylist()
        replacement = {
            "value": {"string": "x", "double": 0.123456, "int64": 77, "bool": True},
            "nan": {"string": "nan", "double": math.nan, "int64": 0, "bool": False},
            "empty": {"string": "", "double": math.inf, "int64": -1, "bool": None},
            "null": dict.fromkeys(("string", "double", "int64", "bool")),
        }[change][str(column.type)]
        values[row % len(values)] = replacement
        table = table.set_column(index, name, pa.array(values, type=column.type))
    buffer = io.BytesIO()
    pq.write_table(table, buffer, row_group_size=group_rows)
    stored = pq.ParquetFile(pa.BufferReader(buffer.getvalue()))
    assert _columns_match(summary, stored) == _first_difference(summary, stored)
