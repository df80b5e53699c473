"""The speed paths give exactly what the general code gives, on generated inputs."""

from __future__ import annotations

import json
import math
import re
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hpo_analysis import normalize, pipeline
from hpo_analysis.derive import (
    _finite,
    _loss_non_finite,
    _objective_matches_metric,
    best_epoch,
    count_non_finite,
    objective_matches,
    record_row,
)
from hpo_analysis.model import CurvePoint, Problem, Settings, Trial
from hpo_analysis.sources import discover, trial_json
from hpo_analysis.sources.base import CleanRead, CleanTrial, ReadResult
from hpo_analysis.write.parquet import curve_metric_names

_VALUES = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-5, 5),
    st.none(),
    st.booleans(),
    st.sampled_from(["0.5", "x"]),
)
_ENTRY = st.one_of(
    st.fixed_dictionaries(
        {"epoch": st.one_of(st.integers(-2, 12), st.floats(0, 3), st.none())},
        optional={"train_loss": _VALUES, "val_loss": _VALUES, "val_auc": _VALUES},
    ),
    st.integers(),
)
_CLEAN_ENTRY = st.fixed_dictionaries(
    {"epoch": st.integers(0, 3)},
    optional={
        "train_loss": st.floats(allow_nan=True, allow_infinity=True),
        "val_loss": st.floats(allow_nan=True, allow_infinity=True),
    },
)


def _slow_curve(raw: list[Any]) -> tuple[tuple[CurvePoint, ...], list[Any]]:
    collector = normalize._Collector()
    original = normalize._clean_curve
    normalize._clean_curve = lambda _raw: None  # type: ignore[assignment]
    try:
        points = normalize._normalize_curve(raw, collector)
    finally:
        normalize._clean_curve = original
    return points, collector.problems


def _same_points(a: tuple[CurvePoint, ...], b: tuple[CurvePoint, ...]) -> bool:
    if len(a) != len(b):
        return False
    for p, q in zip(a, b, strict=True):
        if p.epoch != q.epoch or list(p.metrics) != list(q.metrics):
            return False
        for key in p.metrics:
            x, y = p.metrics[key], q.metrics[key]
            if type(x) is not type(y) or (repr(x) != repr(y)):
                return False
    return True


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(_ENTRY, _CLEAN_ENTRY), max_size=6))
def test_clean_curve_path_equals_general_path(raw: list[Any]) -> None:
    collector = normalize._Collector()
    fast = normalize._normalize_curve(
        [dict(e) if isinstance(e, dict) else e for e in raw], collector
    )
    slow, problems = _slow_curve(raw)
    assert _same_points(fast, slow)
    assert collector.problems == problems


def test_clean_curve_path_is_taken_for_the_common_layout() -> None:
    raw = [{"epoch": i, "train_loss": 0.5, "val_loss": 0.4 - i / 100} for i in range(5)]
    assert normalize._clean_curve(raw) is not None
    assert normalize._clean_curve(raw + [{"epoch": 5, "val_loss": 1}]) is None  # an int
    assert normalize._clean_curve(list(reversed(raw))) is None  # unsorted: a warning is due


def _reference_best_epoch(curve: tuple[CurvePoint, ...]) -> tuple[int | None, float | None]:
    best: tuple[int | None, float | None] = (None, None)
    for point in curve:
        loss = point.metrics.get("val_loss")
        if _finite(loss) and (best[1] is None or loss < best[1]):  # type: ignore[operator]
            best = (point.epoch, float(loss))  # type: ignore[arg-type]
    return best


_METRIC = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-3, 3), st.none())


@given(st.lists(st.dictionaries(st.sampled_from(["val_loss", "train_loss"]), _METRIC)))
def test_best_epoch_and_non_finite_count_match_their_definitions(
    metrics: list[dict[str, Any]],
) -> None:
    curve = tuple(CurvePoint(i, m) for i, m in enumerate(metrics))
    assert best_epoch(curve) == _reference_best_epoch(curve)
    expected = sum(
        1 for p in curve for v in p.metrics.values() if v is not None and not math.isfinite(v)
    )
    assert count_non_finite(curve) == expected


@pytest.mark.parametrize(
    ("values", "expected"),
    [([1e308, 1e308], 0), ([math.inf, -math.inf], 2), ([None, math.nan], 1), ([], 0)],
)
def test_non_finite_count_edge_cases(values: list[float | None], expected: int) -> None:
    curve = tuple(CurvePoint(i, {"val_loss": v}) for i, v in enumerate(values))
    assert count_non_finite(curve) == expected


def _reference_objective_matches(objective: Any, curve: tuple[CurvePoint, ...]) -> list[str]:
    """The definition, metric by metric, with no shortcut."""
    if not _finite(objective) or not curve:
        return []
    names = dict.fromkeys(name for point in curve for name in point.metrics)
    return [name for name in names if _objective_matches_metric(objective, curve, name)]


_SMALL = st.sampled_from([0.25, 0.5, 0.75])  # repeated values: objectives that match
_MATCH_VALUE = st.one_of(
    _SMALL,
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([1e308, -1e308]),  # finite values whose sum overflows
    st.integers(-2, 2),
    st.booleans(),
    st.none(),
)
_METRIC_NAMES = ("val_loss", "train_loss", "val_auc")
_CURVE_METRICS = st.one_of(
    # the common case: every metric a finite float at every epoch
    st.lists(st.fixed_dictionaries(dict.fromkeys(_METRIC_NAMES, _SMALL)), max_size=6),
    # ... but for a non-finite value here and there
    st.lists(
        st.fixed_dictionaries(
            dict.fromkeys(
                _METRIC_NAMES, st.one_of(_SMALL, st.sampled_from([math.inf, -math.inf, math.nan]))
            )
        ),
        max_size=6,
    ),
    st.lists(st.dictionaries(st.sampled_from(_METRIC_NAMES), _MATCH_VALUE), max_size=6),
)


@settings(max_examples=500, deadline=None, derandomize=True)
@given(st.one_of(_SMALL, st.sampled_from([1e308, 1, True, math.nan])), _CURVE_METRICS)
def test_objective_matches_equals_its_definition(
    objective: Any, metrics: list[dict[str, Any]]
) -> None:
    curve = tuple(CurvePoint(i, m) for i, m in enumerate(metrics))
    assert objective_matches(objective, curve) == _reference_objective_matches(objective, curve)


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.lists(st.dictionaries(st.sampled_from(["val_loss", "train_loss", "lr"]), _METRIC)))
def test_record_row_loss_flag_equals_the_full_scan(metrics: list[dict[str, Any]]) -> None:
    """record_row skips the loss scan when the curve has no non-finite value at all."""
    curve = tuple(CurvePoint(i, m) for i, m in enumerate(metrics))
    trial = Trial(
        study="s_2M_h1",
        trial_num=0,
        state="COMPLETE",
        objective=0.5,
        architecture={},
        training={},
        results={},
        curve=curve,
        factors={},
        extra_params={},
        extra={},
        source_file="s_2M_h1/trials/trial_0000.json",
    )
    row = record_row(trial, Settings())
    assert row["_loss_non_finite"] is _loss_non_finite(curve)
    assert row["curve_non_finite"] == count_non_finite(curve)


def test_study_factors_are_remembered_but_never_shared() -> None:
    pattern = Settings().compiled_pattern()
    first = normalize.parse_study_factors("phase6a_2B_h3_threshold_1pct", pattern)
    first["budget"] = "changed"
    again = normalize.parse_study_factors("phase6a_2B_h3_threshold_1pct", pattern)
    assert again == {"budget": "2B", "horizon": "h3"}


def _reference_fits_int64(row: dict[str, Any], problems: list[Problem]) -> bool:
    """The column-by-column check, with no shortcut."""
    for name in pipeline._INT_COLUMNS:
        value = row.get(name)
        if isinstance(value, int) and not pipeline.INT64[0] <= value <= pipeline.INT64[1]:
            if name == "trial_num":
                problems.append(Problem("out_of_range", "trial_num", "rejected"))
                return False
            problems.append(Problem("out_of_range", name))
            row[name] = None
    return True


_INT_CELL = st.one_of(
    st.none(),
    st.booleans(),
    st.floats(allow_nan=False),
    st.integers(-(2**64), 2**64),
    st.sampled_from([2**63 - 1, 2**63, -(2**63), -(2**63) - 1]),
)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.dictionaries(st.sampled_from(pipeline._INT_COLUMNS), _INT_CELL))
def test_int64_check_equals_the_column_by_column_check(row: dict[str, Any]) -> None:
    fast_row, slow_row = dict(row), dict(row)
    fast_problems: list[Problem] = []
    slow_problems: list[Problem] = []
    fits = pipeline._fits_int64(fast_row, fast_problems)
    assert fits == _reference_fits_int64(slow_row, slow_problems)
    assert fast_row == slow_row
    assert [(p.code, p.severity) for p in fast_problems] == [
        (p.code, p.severity) for p in slow_problems
    ]


# --- normalize_trial: the clean path against the careful one -------------------------------

# values that collide (equal, equal within tolerance, int against float) and values that need
# the careful path (text, booleans, huge integers, non-finite floats, objects)
_NUMBERISH = st.one_of(
    st.sampled_from([0.1, 0.1 + 1e-12, 1, 1.0, 2, 64, 64.0, -0.0, 0.0]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-3, 3),
    st.sampled_from([2**64, 2**1100, True, False, None, "0.5", "x", [], {}]),
)
_CLEAN_NUMBER = st.one_of(st.sampled_from([0.1, 1, 2, 64, 1e-3]), st.floats(-1e3, 1e3))
_ALIASES = st.sampled_from(
    [
        "learning_rate",
        "lr",
        "my_lr",
        "epochs",
        "n_epochs",
        "weight_decay",
        "dropout",
        "batch_size",
        "warmup",
        "d_model",
        "hidden_size",
        "n_layers",
        "n_heads",
        "d_ff",
        "d_ff_ratio",
        "param_count",
        "arch_idx",
        "optimizer",
    ]
)


def _params(values: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.dictionaries(_ALIASES, values, max_size=5)


def _raw_trials(values: st.SearchStrategy[Any], curve: st.SearchStrategy[Any]) -> Any:
    container = st.one_of(_params(values), st.none(), st.sampled_from([[], "x"]))
    attrs = st.fixed_dictionaries(
        {},
        optional={
            "architecture": container,
            "training_params": container,
            "learning_curve": curve,
            "val_accuracy": values,
            "val_loss": values,
            "epochs_run": values,
            "duration": values,
            "forced_d_model": values,
            "forced_extreme": st.booleans(),
            "arch_idx": values,
            "val_confusion": st.dictionaries(st.sampled_from(["tp", "fp"]), st.integers()),
        },
    )
    return st.fixed_dictionaries(
        {},
        optional={
            "trial_number": st.one_of(st.integers(0, 3), values),
            "number": st.integers(0, 3),
            "value": values,
            "values": st.one_of(st.lists(values, max_size=2), st.just("x")),
            "state": st.sampled_from(
                ["COMPLETE", "PRUNED", "FAIL", "RUNNING", "TrialState.COMPLETE", "complete", "?", 1]
            ),
            "params": container,
            "architecture": container,
            "training_params": container,
            "user_attrs": st.one_of(attrs, st.just([])),
            "learning_curve": curve,
            "d_model": values,
            "hidden_size": values,
            "n_layers": values,
            "duration_seconds": values,
            "epochs_trained": values,
            "val_accuracy": values,
            "datetime_start": st.sampled_from(["2025-01-15T21:07:15.658843", "x", 3]),
            "datetime_complete": st.sampled_from(["2025-01-15T21:08:30.456600", ""]),
            "custom": st.one_of(values, st.lists(st.integers(), max_size=2)),
        },
    )


_ANY_CURVE = st.one_of(
    st.none(), st.just("x"), st.lists(st.one_of(_ENTRY, _CLEAN_ENTRY), max_size=4)
)
_CLEAN_CURVE = st.one_of(
    st.none(),
    st.lists(
        st.fixed_dictionaries({"train_loss": st.floats(), "val_loss": st.floats()}), max_size=4
    ).map(lambda entries: [{"epoch": i, **e} for i, e in enumerate(entries)]),
)
_FIELD_ALIASES = st.sampled_from([(), (("lr", ("my_lr",)),), (("d_model", ("width", "lr")),)])


def _outcome(function: Any, *args: Any, **kwargs: Any) -> str:
    try:
        return repr(function(*args, **kwargs))
    except OverflowError as err:
        return f"raised {err!r}"


@settings(max_examples=1500, deadline=None)
@given(_raw_trials(_NUMBERISH, _ANY_CURVE), st.sampled_from([None, 0, 2]), _FIELD_ALIASES)
def test_normalize_clean_path_equals_careful_path(
    raw: dict[str, Any], fallback: int | None, aliases: Any
) -> None:
    arguments = {
        "study": "s_2M_h1",
        "source_file": "f",
        "factors": {"budget": "2M"},
        "fallback_number": fallback,
        "aliases": aliases,
    }
    # repr, not ==: NaN, -0.0 and 1 against 1.0 must agree too, as must every dict's order;
    # an integer too large for a float raises alike (the reader reports it)
    careful = _outcome(normalize.careful_trial, raw, **arguments)
    assert _outcome(normalize.normalize_trial, raw, **arguments) == careful
    fields = normalize.clean_fields(raw, fallback, aliases)
    if fields is not None and (
        fields["curve"] is None or normalize._clean_curve(fields["curve"]) is not None
    ):  # the clean path was taken: the careful one finds nothing wrong either
        assert "problems=()" in careful


@settings(max_examples=300, deadline=None)
@given(_raw_trials(_CLEAN_NUMBER, _CLEAN_CURVE))
def test_clean_path_is_taken_for_clean_trials(raw: dict[str, Any]) -> None:
    raw = {**raw, "number": 1, "value": 0.5, "state": "COMPLETE"}
    raw.pop("trial_number", None)
    for key in ("params", "architecture", "training_params"):
        if not isinstance(raw.get(key), dict | None):
            raw.pop(key)
    attrs = raw.get("user_attrs")
    if not isinstance(attrs, dict):
        raw.pop("user_attrs", None)
        attrs = {}
    for key in ("architecture", "training_params"):
        if not isinstance(attrs.get(key), dict | None):
            attrs.pop(key)
    # one place for each value: no disagreement, no integer field holding a float
    raw.pop("user_attrs", None)
    for key in ("architecture", "training_params", "hidden_size", "d_model", "n_layers"):
        raw.pop(key, None)
    attrs = {k: v for k, v in attrs.items() if k in ("learning_curve", "val_accuracy")}
    raw["params"] = {"learning_rate": 0.01, "epochs": 5, "optimizer": "adam"}
    raw["architecture"] = {"d_model": 64, "n_layers": 2}
    raw["user_attrs"] = attrs
    for key in ("epochs_trained", "duration_seconds", "val_accuracy", "custom"):
        raw.pop(key, None)
    assert normalize.clean_fields(raw, 1) is not None
    trial = normalize.normalize_trial(raw, study="s", source_file="f", fallback_number=1)
    assert repr(trial) == repr(normalize.careful_trial(raw, study="s", source_file="f"))


# --- the per-trial file: quick path (columns) against the general path ----------------------

_FLOATISH = st.one_of(
    st.floats(-10, 10),
    st.sampled_from([0.5, 0.25, math.nan, math.inf, -math.inf, -0.0]),
)
_ODD = st.sampled_from([1, 2**70, True, None, "0.5", "x", [1], {"a": 1}])


@st.composite
def _trial_files(draw: st.DrawFn) -> bytes:
    """A per-trial file as the runner writes it, or a near miss of one: non-finite tokens,
    integers beyond 64 bits, duplicate keys, odd types, missing keys, other spellings, curves
    out of order or of mixed shape, escapes."""
    odd = draw(st.booleans())
    value: Any = draw(_FLOATISH)
    n_epochs = draw(st.integers(0, 4))
    names = draw(st.sampled_from([("train_loss", "val_loss", "val_auc"), ("val_loss",), ("acc",)]))
    curve: list[Any] = [
        {"epoch": epoch, **{name: draw(_FLOATISH) for name in names}} for epoch in range(n_epochs)
    ]
    arch = {"d_model": 64, "n_layers": draw(st.sampled_from([2, 4])), "n_heads": 4, "d_ff": 256}
    training = {"learning_rate": draw(st.floats(1e-5, 1e-1)), "epochs": 5, "batch_size": 32}
    attrs: dict[str, Any] = {
        "arch_idx": 1,
        "architecture": dict(arch),
        "training_params": dict(training),
        "learning_curve": curve,
        "val_accuracy": draw(_FLOATISH),
        "val_confusion": {"tp": 3, "fn": 1, "note": "a:b"},
    }
    raw: dict[str, Any] = {
        "trial_number": 3,
        "value": value,
        "state": draw(st.sampled_from(["COMPLETE", "PRUNED", "FAIL"])),
        "params": dict(training),
        "datetime_start": "2025-01-15T21:07:15.658843",
        "datetime_complete": "2025-01-15T21:08:30.456600",
        "duration_seconds": 74.5,
        "architecture": arch,
        "user_attrs": attrs,
    }
    if odd:  # one or more near misses
        for _ in range(draw(st.integers(1, 3))):
            kind = draw(st.integers(0, 12))
            if kind == 0:
                raw[draw(st.sampled_from(sorted(raw)))] = draw(_ODD)
            elif kind == 1:
                attrs[draw(st.sampled_from(sorted(attrs)))] = draw(_ODD)
            elif kind == 2 and curve:
                curve[draw(st.integers(0, len(curve) - 1))][names[0]] = draw(_ODD)
            elif kind == 3 and curve:
                curve.reverse()
            elif kind == 4 and curve:
                entry = curve[0]
                curve[0] = {**{k: v for k, v in entry.items() if k != "epoch"}, "epoch": 0}
            elif kind == 5 and curve:
                curve[-1].pop("epoch", None)
            elif kind == 6:
                raw["params"] = {"lr": training["learning_rate"], "epochs": 6}
            elif kind == 7:
                raw.pop(draw(st.sampled_from(sorted(raw))))
            elif kind == 8:
                raw["custom"] = draw(st.sampled_from([2**70, -(2**63) - 1, "caf\u00e9", [[[]]]]))
            elif kind == 9 and curve:
                curve.append({"epoch": n_epochs, "other": 0.5})
            elif kind == 10:
                raw["d_model"] = draw(_ODD)
            elif kind == 11 and curve:
                curve[-1]["epoch"] = 2**64
            elif kind == 12 and curve:  # the metrics of one epoch in another order
                entry = curve[-1]
                curve[-1] = {"epoch": entry.pop("epoch", 0), **dict(reversed(entry.items()))}
    text = json.dumps(raw, indent=draw(st.sampled_from([None, 2])))
    if odd and draw(st.booleans()):
        edit = draw(st.integers(0, 3))
        if edit == 0:
            text = '{"value": 1.0, ' + text[1:]  # a duplicate key
        elif edit == 1:
            text = text.replace('"state"', '"st\\u0061te"')  # an escape
        elif edit == 2:
            text = text.replace("a:b", "a\\u003ab")  # an escaped colon
        else:
            text = "\ufeff" + text  # a byte order mark
    return text.encode("utf-8")


def _file_outcome(path: Path, careful: bool) -> Any:
    found = next(iter(discover(path.parent.parent.parent)))
    if careful:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(trial_json, "read_clean", trial_json.read)
            outcome = pipeline._read_one(found, Settings(), keep=True)
    else:
        outcome = pipeline._read_one(found, Settings(), keep=True)
    return _outcome_parts(outcome)


@settings(max_examples=400, deadline=None)
@given(_trial_files())
def test_per_trial_file_quick_path_equals_general_path(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "src" / "hpo_2M_h1" / "trials" / "trial_0003.json"
        path.parent.mkdir(parents=True)
        path.write_bytes(data)
        assert _file_outcome(path, careful=False) == _file_outcome(path, careful=True)


def test_per_trial_file_quick_path_is_taken_for_the_runner_file(tmp_path: Path) -> None:
    path = tmp_path / "s_2M_h1" / "trials" / "trial_0003.json"
    path.parent.mkdir(parents=True)
    curve = [{"epoch": i, "train_loss": 0.5, "val_loss": 0.4 - i / 100} for i in range(3)]
    raw = {
        "trial_number": 3,
        "value": 0.38,
        "state": "COMPLETE",
        "params": {"learning_rate": 0.01, "epochs": 5},
        "architecture": {"d_model": 64, "n_layers": 2},
        "user_attrs": {"learning_curve": curve, "split_stats": {"n_train": 10}},
    }
    path.write_text(json.dumps(raw, indent=2))
    read = trial_json.read_clean(path, "f", Settings())
    assert isinstance(read, CleanRead) and len(read.trials) == 1
    clean = read.trials[0]
    assert isinstance(clean, CleanTrial) and clean.curve is not None
    assert clean.curve.points() == normalize.normalize_trial(raw, study="s", source_file="f").curve
    path.write_text(json.dumps({**raw, "value": float("nan")}))  # a NaN token: still one parse
    assert isinstance(trial_json.read_clean(path, "f", Settings()), CleanRead)
    path.write_text(json.dumps({**raw, "value": "0.38"}))  # a warning is due: the general path
    assert isinstance(trial_json.read_clean(path, "f", Settings()), ReadResult)


# --- the study dump: quick path (fields) against the general path ----------------------------


@st.composite
def _dump_files(draw: st.DrawFn) -> tuple[bytes, bytes | None]:
    """A study dump as a runner writes it (thin records: number, value, params, the
    architecture and results at the top level), or near misses of one: other spellings,
    several objective values, intermediate values, curves, odd types, conflicts, missing
    keys; and maybe a best-trial file beside it."""
    records: list[Any] = []
    for number in range(draw(st.integers(0, 4))):
        record: dict[str, Any] = {
            "trial_number": number,
            "value": draw(_FLOATISH),
            "params": {
                "arch_idx": 1,
                "learning_rate": draw(st.floats(1e-5, 1e-1)),
                "epochs": 50,
                "dropout": draw(st.sampled_from([0.1, 0.25])),
                "batch_size": 64,
                "optimizer": "adam",
            },
            "duration_seconds": 119.5,
            "d_model": 64,
            "n_layers": draw(st.sampled_from([2, 4])),
            "n_heads": 4,
            "param_count": 1000,
            "val_accuracy": draw(_FLOATISH),
            "train_accuracy": 0.75,
        }
        for _ in range(draw(st.integers(0, 2))):
            kind = draw(st.integers(0, 14))
            if kind == 0:
                record[draw(st.sampled_from(sorted(record)))] = draw(_ODD)
            elif kind == 1 and isinstance(record.get("params"), dict):
                record["params"][draw(st.sampled_from(sorted(record["params"])))] = draw(_ODD)
            elif kind == 2:
                record["values"] = draw(st.lists(_FLOATISH, min_size=1, max_size=3))
            elif kind == 3:
                record["intermediate_values"] = {"0": 0.5, "1": draw(_FLOATISH)}
            elif kind == 4:
                record["state"] = draw(
                    st.sampled_from(["COMPLETE", "TrialState.PRUNED", "complete", "FAIL", "?"])
                )
            elif kind == 5 and "trial_number" in record:
                record["number"] = record.pop("trial_number")
            elif kind == 6:
                curve = [{"epoch": i, "val_loss": draw(_FLOATISH)} for i in range(2)]
                record["user_attrs"] = {"learning_curve": curve, "val_auc": 0.5}
            elif kind == 7:
                record["hidden_size"] = draw(st.sampled_from([64, 128, 64.0]))
            elif kind == 8 and isinstance(record.get("params"), dict):
                record["params"]["d_ff_ratio"] = 2
            elif kind == 9:
                record["custom"] = draw(st.sampled_from([[[[]]], {"a": 2**70}, "caf\u00e9"]))
            elif kind == 10:
                record.pop(draw(st.sampled_from(sorted(record))))
            elif kind == 11:
                record["datetime_start"] = "2025-01-15T21:07:15.658843"
                record["datetime_complete"] = draw(st.sampled_from(["2025-01-15T21:08:30", ""]))
            elif kind == 12:
                record["trial_number"] = draw(st.sampled_from([2**63, 2**70, -1]))
            elif kind == 13:
                record["values"] = None
            else:
                record["user_attrs"] = {"learning_curve": [], "forced_d_model": 64}
        records.append(record)
    if draw(st.booleans()) and records:
        records.insert(draw(st.integers(0, len(records))), draw(_ODD))  # not an object
    value: Any = records
    if draw(st.booleans()):
        value = {"experiment": "hpo_2M_h1", "trials": records}
        value.update(
            draw(
                st.sampled_from(
                    [{}, {"direction": "maximize"}, {"directions": ["minimize", "maximize"]}]
                )
            )
        )
        if draw(st.booleans()):
            value["metric_names"] = ["acc", "loss"]
    text = json.dumps(value, indent=draw(st.sampled_from([None, 2])))
    if draw(st.booleans()):
        edit = draw(st.integers(0, 2))
        if edit == 0 and text.startswith("{"):
            text = '{"trials": [], ' + text[1:]  # a duplicate key
        elif edit == 1:
            text = "\ufeff" + text  # a byte order mark
        else:
            text = text.replace('"adam"', '"ad\\u0061m"')  # an escape
    meta = None
    if draw(st.booleans()):
        meta = json.dumps(
            {"best_value": 0.25, "best_trial_number": 0, "budget": "2M", "n_trials": 3}
        ).encode()
    return text.encode("utf-8"), meta


def _dump_outcome(root: Path, settings: Settings, careful: bool) -> Any:
    from hpo_analysis.sources import base, study_dump

    base._shared = None  # each run parses for itself
    (found,) = [f for f in discover(root) if f.reader == study_dump.NAME]
    with pytest.MonkeyPatch.context() as patch:
        if careful:
            patch.setattr(study_dump, "read_clean", study_dump.read)
        outcome = pipeline._read_one(found, settings, keep=True)
    return _outcome_parts(outcome)


@settings(max_examples=400, deadline=None)
@given(_dump_files(), _FIELD_ALIASES, st.sampled_from([(), ("hpo_2*",), ("x*",)]))
def test_study_dump_quick_path_equals_general_path(
    files: tuple[bytes, bytes | None], aliases: Any, studies: tuple[str, ...]
) -> None:
    data, meta = files
    settings = Settings(field_aliases=aliases, studies=studies)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "src"
        (root / "hpo_2M_h1").mkdir(parents=True)
        (root / "hpo_2M_h1" / "all_trials.json").write_bytes(data)
        if meta is not None:
            (root / "hpo_2M_h1" / "best_params.json").write_bytes(meta)
        quick = _dump_outcome(root, settings, careful=False)
        assert quick == _dump_outcome(root, settings, careful=True)


def test_study_dump_quick_path_is_taken_for_the_runner_dump(tmp_path: Path) -> None:
    from hpo_analysis.sources import study_dump

    thin = {"trial_number": 0, "value": 0.5, "params": {"learning_rate": 0.1}, "d_model": 64}
    odd = {"number": 1, "values": [0.5, 0.25]}  # several objectives: the general path
    path = tmp_path / "s_2M_h1_all_trials.json"
    path.write_text(json.dumps({"trials": [thin, odd]}))
    read = study_dump.read_clean(path, "f", Settings())
    assert isinstance(read, CleanRead)
    assert [type(t) for t in read.trials] == [CleanTrial, Trial]


def test_a_dump_is_parsed_once_for_its_reader_and_the_best_trial_file(tmp_path: Path) -> None:
    """The parse shared by the dump's reader and the best-trial file beside it (whichever
    reads first) gives each what a parse of its own gives."""
    from hpo_analysis import jsonio
    from hpo_analysis.sources import base, study_dump, study_meta

    study = tmp_path / "hpo_2M_h1"
    study.mkdir()
    trials = [{"number": i, "value": 0.5 - i / 10, "state": "COMPLETE"} for i in range(3)]
    dump = study / "all_trials.json"
    dump.write_text(json.dumps(trials))
    meta = study / "best_params.json"
    meta.write_text(json.dumps({"best_value": 0.3, "best_trial_number": 2, "n_trials": 4}))

    def both(first: str) -> tuple[str, int]:
        base._shared = None
        parsed = 0
        real = jsonio.load_json_bytes

        def counted(data: bytes, apart: tuple[str, ...] = ()) -> Any:
            nonlocal parsed
            parsed += data == dump.read_bytes()
            return real(data, apart)

        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(base, "load_json_bytes", counted)
            patch.setattr(study_meta, "load_json_bytes", counted)
            reads = {
                "dump": lambda: study_dump.read(dump, "d", Settings()),
                "meta": lambda: study_meta.read(meta, "m", Settings()),
            }
            order = [first, "meta" if first == "dump" else "dump"]
            results = {name: reads[name]() for name in order}
        return repr((results["dump"], results["meta"])), parsed

    shared, parsed = both("dump")
    assert parsed == 1 and both("meta") == (shared, 1)
    base._shared = None
    with pytest.MonkeyPatch.context() as patch:  # each parsing for itself
        patch.setattr(base, "load_json_shared", lambda data, sha256: jsonio.load_json_bytes(data))
        patch.setattr(study_meta, "load_json_shared", base.load_json_shared)
        alone = repr(
            (study_dump.read(dump, "d", Settings()), study_meta.read(meta, "m", Settings()))
        )
    assert alone == shared
    assert "meta_count_mismatch" in shared  # the cross-check did run


def test_reading_by_descriptor_equals_reading_a_file_object(tmp_path: Path) -> None:
    """Contents, size, sha256 and problems as a file object's read gives them, also when the
    size found first is not the size read (a file that changed meanwhile, a pseudo file)."""
    import hashlib
    import os

    from hpo_analysis.sources import base

    path = tmp_path / "f.json"
    for content in (b"", b"{}", b"x" * 5000):
        path.write_bytes(content)
        for shift in (0, -3, 7, None):

            def fstat(fd: int, shift: int | None = shift, real: Any = os.fstat) -> Any:
                info = real(fd)
                size = 0 if shift is None else max(0, info.st_size + shift)
                return os.stat_result((*info[:6], size, *info[7:10]))

            with pytest.MonkeyPatch.context() as patch:
                patch.setattr(base.os, "fstat", fstat)
                result = ReadResult()
                assert base.read_bytes_checked(path, 1 << 20, result) == content
            assert result.sha256 == hashlib.sha256(content).hexdigest()
            assert not result.problems
    too_large = ReadResult()
    assert base.read_bytes_checked(path, 100, too_large) is None
    assert too_large.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert [p.code for p in too_large.problems] == ["too_large"]
    for unreadable in (tmp_path, tmp_path / "missing.json"):
        result = ReadResult()
        assert base.read_bytes_checked(unreadable, 100, result) is None
        try:
            open(unreadable, "rb").close()  # noqa: SIM115
        except OSError as err:
            expected = f"cannot read: {err.strerror}"
        assert [(p.code, p.message) for p in result.problems] == [("unreadable", expected)]
    assert result.size_bytes is None


_COLUMN_VALUE = st.one_of(
    _SMALL,
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([1e308, -1e308, -0.0, 0.0]),
)


@settings(max_examples=500, deadline=None)
@given(
    st.lists(st.tuples(_COLUMN_VALUE, _COLUMN_VALUE), min_size=1, max_size=8),
    st.sampled_from([("val_loss", "train_loss"), ("val_auc", "val_loss"), ("acc", "loss")]),
    st.one_of(_SMALL, st.none(), st.sampled_from([math.nan, 1e308, -0.0])),
)
def test_curve_columns_give_the_points_row_block_and_fragment(
    values: list[tuple[float, float]], names: tuple[str, str], objective: Any
) -> None:
    """Row facts, curve block and JSON fragment computed from the columns equal those of the
    same curve as points."""
    from hpo_analysis.derive import column_facts, curve_facts
    from hpo_analysis.write.parquet import encode_curve

    entries = [{"epoch": 2 * i, names[0]: a, names[1]: b} for i, (a, b) in enumerate(values)]
    curve = normalize.curve_columns(entries)
    assert curve is not None
    points = curve.points()
    assert _same_points(points, normalize._clean_curve(entries) or ())
    assert repr(column_facts(curve, objective)) == repr(curve_facts(points, objective))
    assert pipeline.curve_block(curve) == encode_curve(points)
    trial = Trial("s", 0, "COMPLETE", None, {}, {}, {}, points, {}, {}, {"x": [1]}, "f")
    non_finite = count_non_finite(points) > 0
    assert pipeline._columns_fragment(curve, trial.extra, non_finite) == pipeline.heavy_fragment(
        trial, non_finite
    )


# --- merge: the one-pass fold against the field-by-field definition --------------------------


def _reference_fold(result: Any, other: Any) -> None:
    """The fold as first written: every compared field through ``_same``, gaps one by one."""
    from hpo_analysis.merge import (
        _CURVE,
        _DIRECTION,
        _OWN_FIELDS,
        Conflict,
        _compared,
        _objective_value,
        _same,
    )

    row, theirs = result.row, other.row
    for name in sorted(k for k in theirs if _compared(k)):
        if name == "objective":
            mine, their = _objective_value(row), _objective_value(theirs)
        elif name == "state":
            mine = None if row.get("state") == "UNKNOWN" else row.get("state")
            their = None if theirs.get("state") == "UNKNOWN" else theirs.get("state")
        else:
            mine, their = row.get(name), theirs.get(name)
        if not _same(mine, their):
            result.conflicts.append(
                Conflict(
                    row["study"],
                    row["trial_num"],
                    name,
                    mine,
                    their,
                    result.primary.file,
                    other.file,
                )
            )
    if not row.get("_curve_len") and theirs.get("_curve_len"):
        for name in _CURVE:
            row[name] = theirs.get(name)
        result.location, result.names = other.location, other.names
    if row.get("objective_kind") == "missing" and theirs.get("objective_kind") != "missing":
        row["objective"], row["objective_kind"] = theirs.get("objective"), theirs["objective_kind"]
    if row.get("state") == "UNKNOWN" and theirs.get("state") not in (None, "UNKNOWN"):
        row["state"] = theirs["state"]
    if row.get("_direction") is None and theirs.get("_direction") is not None:
        for name in _DIRECTION:
            row[name] = theirs.get(name)
    for name, value in theirs.items():
        if value is None or name in _OWN_FIELDS or name in _CURVE or name in _DIRECTION:
            continue
        if name in ("objective", "objective_kind", "state"):
            continue
        if row.get(name) is None:
            row[name] = value


_MERGE_VALUE = st.one_of(
    st.sampled_from([None, True, False, 1, 1.0, 1 + 1e-12, 2, math.nan, -0.0, 0, "a", "b", [1]]),
    st.floats(allow_nan=True, allow_infinity=True),
)
_MERGE_NAMES = st.sampled_from(
    [
        "objective",
        "state",
        "d_model",
        "lr",
        "arch_idx",
        "param_optimizer",
        "objective_acc",
        "objective_kind",
        "val_accuracy",
        "best_epoch",
        "_curve_len",
        "_direction",
        "_direction_source",
        "source_file",
        "datetime_start",
    ]
)
_MERGE_ROW = st.dictionaries(_MERGE_NAMES, _MERGE_VALUE, max_size=10).map(
    lambda row: {
        "study": "s",
        "trial_num": 1,
        **row,
        "objective_kind": row.get("objective_kind")
        if row.get("objective_kind") in ("finite", "missing", "nan")
        else "finite",
        "state": row.get("state") if row.get("state") in ("COMPLETE", "UNKNOWN", None) else "FAIL",
    }
)


def _assert_fold_is_its_definition(mine: dict[str, Any], theirs: dict[str, Any]) -> None:
    """A trial file's row folded with a dump's row by ``merge._fold`` and by the definition."""
    from hpo_analysis import merge

    def folded(fold: Any) -> str:
        first = merge.Record(dict(mine), (0, 1, 1, 1), ["a"], "s/trials/t_1.json", "trial_json", 0)
        second = merge.Record(dict(theirs), (9, 1, 1, 0), [], "s/dump.json", "study_dump", 1)
        result = merge.Merged(dict(first.row), first.location, first.names, first)
        fold(result, second)
        return repr((result.row, list(result.row), result.conflicts, result.location))

    assert folded(merge._fold) == folded(_reference_fold)


@settings(max_examples=500, deadline=None)
@given(_MERGE_ROW, _MERGE_ROW)
def test_merge_fold_equals_its_definition(mine: dict[str, Any], theirs: dict[str, Any]) -> None:
    _assert_fold_is_its_definition(mine, theirs)


def test_clean_path_accepts_aliases_given_as_lists() -> None:
    raw = {"number": 0, "value": 0.5, "params": {"my_lr": 0.1}}
    aliases: Any = [("lr", ["my_lr"])]  # a library caller's lists: not hashable
    trial = normalize.normalize_trial(raw, study="s", source_file="f", aliases=aliases)
    assert isinstance(trial, Trial) and trial.training["lr"] == 0.1 and trial.extra_params == {}


_TRICKY_TEXT = st.text(alphabet='[]{}"\\:,nul\u00e9', max_size=6)


@settings(max_examples=400, deadline=None, derandomize=True)
@given(
    st.recursive(
        st.one_of(st.none(), st.integers(), _TRICKY_TEXT),
        lambda inner: st.one_of(
            st.lists(inner, max_size=3), st.dictionaries(_TRICKY_TEXT, inner, max_size=3)
        ),
        max_leaves=30,
    ),
    st.integers(0, 130),
    st.sampled_from([None, 1]),
)
def test_nesting_depth_of_quotes_and_brackets_equals_the_regex_scan(
    value: Any, wrap: int, indent: Any
) -> None:
    """The depth scan over the quotes and brackets alone (escapes removed, pairs of quotes
    dropped) equals the regular expression's, also past the depth limit."""
    from hpo_analysis.jsonio import nesting_depth, valid_nesting_depth

    for level in range(wrap):  # deep texts, with strings holding brackets on the way down
        value = [value, "]"] if level % 2 else {'"[': value}
    data = json.dumps(value, indent=indent).encode("utf-8")
    assert valid_nesting_depth(data) == nesting_depth(data)


_ROW_VALUE = st.one_of(
    st.none(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(),
    st.sampled_from([2**70, "null", "nul", "a null", True]),
    st.lists(st.one_of(st.none(), st.floats(allow_nan=True), st.just("null")), max_size=3),
    st.dictionaries(st.sampled_from(["a", "null"]), st.one_of(st.none(), st.floats()), max_size=2),
)


@settings(max_examples=600, deadline=None, derandomize=True)
@given(
    st.one_of(
        st.dictionaries(st.sampled_from(["a", "b", "null", "x_null"]), _ROW_VALUE, max_size=6),
        _ROW_VALUE,
    )
)
def test_lossless_encoding_without_a_walk_equals_the_walked_one(value: Any) -> None:
    """The cache's row encoding, which counts nulls instead of walking the values, gives the
    bytes of the walk: orjson's text only when nothing is non-finite, else the tokens."""
    import orjson

    from hpo_analysis.jsonio import _has_non_finite, dumps_lossless, loads_lossless

    expected = None
    if not _has_non_finite(value):
        try:
            expected = orjson.dumps(value)
        except (TypeError, orjson.JSONEncodeError):
            pass
    if expected is None:
        expected = json.dumps(value, separators=(",", ":")).encode("ascii")
    assert dumps_lossless(value) == expected
    assert json.dumps(loads_lossless(expected)) == json.dumps(value)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(
    st.integers(90, 110),
    st.lists(st.sampled_from(["[", "{", "a", "\\u005b", "\\u007b", "\\\\", '\\"']), max_size=8),
    st.lists(st.sampled_from(["list", "dict", "wide"]), min_size=1, max_size=3),
)
def test_depth_limit_of_the_fast_loader_equals_the_standard_librarys(
    depth: int, text: list[str], kinds: list[str]
) -> None:
    """Texts nested about as deep as the limit, with brackets and escapes in strings: the
    loader (its bracket count taken on the re-encoded value) gives the standard library's
    value limited at the same depth."""
    from hpo_analysis import jsonio

    leaf = '"' + "".join(text) + '"'
    doc = leaf
    for level in range(depth):
        kind = kinds[level % len(kinds)]
        if kind == "list":
            doc = f"[{doc}]"
        elif kind == "dict":
            doc = f'{{"k{level}": {doc}}}'
        else:
            doc = f"[{leaf}, {doc}, {{}}]"
    data = doc.encode()
    reference = jsonio._stdlib_load(data)
    if jsonio.nesting_depth(data) > jsonio.MAX_DEPTH:
        reference.value = jsonio.limit_depth(
            reference.value, jsonio.MAX_DEPTH, "", reference.too_deep
        )
    assert repr(jsonio.load_json_bytes(data)) == repr(reference)


def _odd_tree(root: Path) -> None:
    """Files, directories, links inside and outside, a broken link, a FIFO, an empty folder."""
    import os

    study = root / "s_2M_h1" / "trials"
    study.mkdir(parents=True)
    (study / "trial_0001.json").write_text("{}")
    (study / "notes.txt").write_text("x")
    (root / "s_2M_h1" / "s_2M_h1_all_trials.json").write_text("[]")
    (root / "empty").mkdir()
    (root / ".DS_Store").write_text("")
    (root / "inside.json").symlink_to(study / "trial_0001.json")
    (root / "linked_dir").symlink_to(root / "s_2M_h1")
    (root / "broken.json").symlink_to(root / "missing.json")
    outside = root.parent / f"{root.name}_outside.json"
    outside.write_text("{}")
    (root / "outside.json").symlink_to(outside)
    if hasattr(os, "mkfifo"):
        os.mkfifo(root / "pipe.json")


@pytest.mark.parametrize("follow", [False, True])
def test_discovery_by_the_listing_equals_discovery_by_stat(tmp_path: Path, follow: bool) -> None:
    """The file type from the directory listing classifies every entry as a stat of it does."""
    import os

    root = tmp_path / "src"
    root.mkdir()
    _odd_tree(root)
    quick = list(discover(root, follow_symlinks=follow))
    with pytest.MonkeyPatch.context() as patch:  # an unsearchable directory: a stat each
        patch.setattr(os, "access", lambda *args, **kwargs: False)
        careful = list(discover(root, follow_symlinks=follow))
    assert quick == careful
    assert {f.status for f in quick} >= {"read", "ignored", "rejected"}


def test_file_time_of_the_open_file_equals_a_stat(tmp_path: Path) -> None:
    """The quick path's modification time (from the open file) is the stat's, read or not."""
    import os

    path = tmp_path / "s_2M_h1" / "trials" / "trial_0001.json"
    path.parent.mkdir(parents=True)
    for text in ('{"trial_number": 1, "value": 0.5}', '{"value": "x"}', "{", ""):
        path.write_text(text)
        os.utime(path, ns=(1, 1_234_567_891_011))
        (found,) = discover(tmp_path)
        outcome = pipeline._read_one(found, Settings(), keep=True)
        assert outcome.stamp is not None
        assert outcome.stamp.mtime_ns == path.stat().st_mtime_ns == 1_234_567_891_011
    path.unlink()
    assert pipeline._read_one(found, Settings(), keep=True).stamp is None


# --- curves.parquet: blocks sharing a header are laid out once ---------------------------------

_CURVE_METRIC_NAMES = ["val_loss", "train_loss", "lr", "study", "epoch"]
_CURVE = st.lists(
    st.dictionaries(
        st.sampled_from(_CURVE_METRIC_NAMES),
        st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.none()),
        max_size=3,
    ),
    min_size=0,
    max_size=4,
)


def _curve_rows_by_definition(
    blocks: list[tuple[str, int, bytes]], columns: list[str]
) -> list[tuple[Any, ...]]:
    """The rows of curves.parquet decoded trial by trial (the first metric filling a column
    wins; a missing metric or value is null)."""
    from hpo_analysis.write.parquet import column_for_metric, decode_curve

    rows = []
    for study, trial_num, block in blocks:
        if not block:
            continue
        epochs, metrics = decode_curve(block)
        filled: dict[str, tuple[Any, Any]] = {}
        for name, pair in metrics.items():
            filled.setdefault(column_for_metric(name), pair)
        for i, epoch in enumerate(epochs.tolist()):
            cells: list[Any] = [study, trial_num, epoch]
            for column in columns:
                values, valid = filled.get(column, (None, None))
                present = values is not None and (valid is None or bool(valid[i]))
                cells.append(_same_nan(float(values[i])) if present else None)
            rows.append(tuple(cells))
    return rows


def _same_nan(value: float) -> Any:
    return "nan" if math.isnan(value) else value


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["a", "b"]), _CURVE), max_size=8), st.integers(1, 9))
def test_curves_writer_equals_decoding_each_block(
    trials: list[tuple[str, list[dict[str, float | None]]]], row_group: int
) -> None:
    import pyarrow.parquet as pq

    from hpo_analysis.write import parquet

    blocks = []
    for trial_num, (study, metrics) in enumerate(trials):
        curve = [CurvePoint(epoch, m) for epoch, m in enumerate(metrics)]
        blocks.append((study, trial_num, parquet.encode_curve(curve)))
    names = {name for _, metrics in trials for m in metrics for name in m}
    original = parquet.CURVE_ROW_GROUP
    parquet.CURVE_ROW_GROUP = row_group  # several row groups, some blocks alone in one
    try:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "curves.parquet"
            n_rows = parquet.write_curves(
                path, ((s, n) for s, n, _ in blocks), lambda key: blocks[key[1]][2], names
            )
            table = pq.read_table(path)
    finally:
        parquet.CURVE_ROW_GROUP = original
    columns = parquet.curve_columns(names)
    assert table.column_names == ["study", "trial_num", "epoch", *columns]
    found = [
        tuple(v if not isinstance(v, float) else _same_nan(v) for v in row)
        for row in zip(*(table.column(n).to_pylist() for n in table.column_names), strict=True)
    ]
    assert found == _curve_rows_by_definition(blocks, columns)
    assert n_rows == len(found)


# --- validate: a trial's summary values, a group at a time ---------------------------------------


def _json_values_by_definition(trial: dict[str, Any]) -> tuple[Any, ...] | str:
    from hpo_analysis.validate import _JSON_PLACES

    try:
        return tuple(trial[g][n] if g else trial[n] for g, n in _JSON_PLACES)
    except (KeyError, TypeError):
        return "a field or group is missing"


def _a_trial(seed: int) -> dict[str, Any]:
    from hpo_analysis.validate import _JSON_PLACES

    trial: dict[str, Any] = {}
    for position, (group, name) in enumerate(_JSON_PLACES):
        node = trial.setdefault(group, {}) if group else trial
        node[name] = seed * 100 + position
    return trial


@settings(max_examples=300, deadline=None)
@given(
    st.integers(0, 9),
    st.lists(
        st.tuples(
            st.sampled_from(["delete", "replace"]),
            st.integers(0, 60),
            st.sampled_from([None, 1, "x", [], [1], {}]),
        ),
        max_size=4,
    ),
)
def test_summary_values_of_a_trial_equal_their_definition(
    seed: int, changes: list[tuple[str, int, Any]]
) -> None:
    from hpo_analysis.validate import _JSON_PLACES, _JSON_VALUES

    trial = _a_trial(seed)
    groups = sorted({g for g, _ in _JSON_PLACES if g})
    for action, where, value in changes:
        if where < len(_JSON_PLACES):  # a field
            group, name = _JSON_PLACES[where]
            node = trial.get(group) if group else trial
            if isinstance(node, dict):
                if action == "delete":
                    node.pop(name, None)
                else:
                    node[name] = value
        else:  # a whole group
            group = groups[where % len(groups)]
            if action == "delete":
                trial.pop(group, None)
            else:
                trial[group] = value
    expected = _json_values_by_definition(trial)
    try:
        found: tuple[Any, ...] | str = _JSON_VALUES(trial)
    except (KeyError, TypeError):  # validate takes either the same way
        found = "a field or group is missing"
    assert found == expected


# --- arch_style: worked out per distinct budget and architecture ---------------------------------


def _arch_style_by_definition(rows: list[dict[str, Any]]) -> None:
    """assign_arch_style row by row, as first written."""
    from hpo_analysis.derive import _budget_key, _ratio, budget_params, style_ranks

    groups: dict[str, list[Any]] = {}
    for row in rows:
        row["budget_params"] = budget_params(row.get("budget"))
        ratio = _ratio(row)
        if ratio is not None:
            groups.setdefault(_budget_key(row), []).append(ratio)
    styles = {key: style_ranks(ratios) for key, ratios in groups.items()}
    for row in rows:
        ratio = _ratio(row)
        row["arch_style"] = None if ratio is None else styles[_budget_key(row)][ratio]


_ARCH_VALUE = st.one_of(
    st.sampled_from([0, 1, 2, 3, 4, 6, 8, 12, 16, 64, 128, -4]),
    st.sampled_from([None, 2.0, 4.0, True, "8"]),
)
_ARCH_ROW = st.fixed_dictionaries(
    {
        "study": st.sampled_from(["s1", "s2"]),
        "budget": st.sampled_from([None, "", "2M", "20M", "2m", "big", " 2M "]),
        "n_layers": _ARCH_VALUE,
        "d_model": _ARCH_VALUE,
    }
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_ARCH_ROW, max_size=30))
def test_arch_style_equals_its_row_by_row_definition(rows: list[dict[str, Any]]) -> None:
    from hpo_analysis.derive import assign_arch_style

    expected = [dict(r) for r in rows]
    _arch_style_by_definition(expected)
    found = [dict(r) for r in rows]
    assign_arch_style(found)
    assert repr(found) == repr(expected)


# --- validate: the manifest's trial count, read by column position -------------------------------


def _manifest_trials_by_definition(path: Path) -> int | str:
    import csv

    try:
        with open(path, encoding="utf-8", newline="") as handle:
            return sum(
                int(m["n_trials"] or 0)
                for m in csv.DictReader(handle)
                if m["status"] in ("ok", "warning")
            )
    except (KeyError, ValueError) as err:
        return type(err).__name__


_MANIFEST_CELL = st.sampled_from(["ok", "warning", "rejected", "", "3", "12", "x", "a,b"])


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.sampled_from(["path", "status", "n_trials", "reason"]), max_size=5),
    st.lists(st.lists(_MANIFEST_CELL, max_size=6), max_size=6),
)
def test_manifest_trial_count_equals_the_dict_reader_sum(
    header: list[str], rows: list[list[str]]
) -> None:
    import csv

    from hpo_analysis.validate import _manifest_trials

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "manifest.csv"
        with open(path, "w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle, lineterminator="\r\n")
            for row in [header, *rows]:  # an empty list is a blank line
                if row:
                    writer.writerow(row)
                else:
                    handle.write("\r\n")
        try:
            found: int | str = _manifest_trials(path)
        except (KeyError, ValueError) as err:
            found = type(err).__name__
        assert found == _manifest_trials_by_definition(path)


# --- hpo_full.json: a trial line parsed in place ------------------------------------------------


_LINE_BODY = st.one_of(
    st.sampled_from(
        [
            b'{"a": 1}',
            b'{"a": 18446744073709551616}',
            b'{"a": -9223372036854775809, "b": 0.12345678901234567890123}',
            b'{"a": 1234567890123456789012}',
            b'{"a": NaN}',
            b'{"a": 1e400}',
            b'{"a": [1, 2',
            b"[1, 2]",
            b"",
            b'{"a": "\\u0031"}',
        ]
    ),
    st.recursive(
        st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=4)),
        lambda inner: (
            st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3)
        ),
        max_leaves=8,
    ).map(lambda value: json.dumps(value).encode()),
)


@given(_LINE_BODY, st.sampled_from([b",\n", b"\n"]))
def test_trial_line_parsed_in_place_equals_loads_strict(body: bytes, end: bytes) -> None:
    from hpo_analysis.fulljson import _loads_start, loads_strict

    def outcome(parse: Any) -> tuple[str, str]:
        try:
            return "value", repr(parse())
        except ValueError as err:
            return "error", str(err)

    line = body + end
    assert outcome(lambda: _loads_start(line, len(body))) == outcome(lambda: loads_strict(body))


def _outcome_parts(outcome: Any) -> tuple[Any, ...]:
    """What a file's outcome gives the pipeline, comparable across the two paths."""
    read = outcome.read
    assert read is not None
    return (
        read.size_bytes,
        read.sha256,
        read.problems,
        [
            (repr(row), row_json, fragment, block)
            for row, row_json, fragment, block in outcome.entries
        ],
        # the metric names a quick path hands on are those of its curve blocks
        pipeline.entry_curve_names(outcome),
        [curve_metric_names(block) for _, _, _, block in outcome.entries],
    )


# --- per folder, per form: what is worked out once stands for what each file would give ------

_FOLDER_PART = st.sampled_from(["trials", "hpo_2M_h1", "run_20m_3", "a.b", "x", "trials.d"])
_FILE_NAME = st.sampled_from(
    ["trial_0003.json", "trial_12.json", "t.json", "7_x9.json", ".7", "x7.", "a9.tar.gz", "3.j.7"]
)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(st.lists(_FOLDER_PART, max_size=3), _FILE_NAME, st.booleans()),
        min_size=1,
        max_size=8,
    ),
    st.sampled_from([Settings().study_pattern, r"_(?P<budget>\d+m)_(?P<horizon>\d+)", "(?P<x>a)"]),
)
def test_trial_file_context_per_folder_equals_its_per_file_definition(
    paths: list[tuple[list[str], str, bool]], pattern: str
) -> None:
    """The study and factors worked out once per folder, and the number once per file name,
    are those of each file's own path; the factors handed out are never shared."""
    settings = Settings(study_pattern=pattern)
    for parts, name, absolute in paths:
        path = Path("/" if absolute else ".", *parts, name)
        study = trial_json.study_of(path)
        number = trial_json._NUMBER_IN_NAME.search(path.stem)
        expected = {
            "study": study,
            "source_file": "d",
            "factors": normalize.parse_study_factors(study, settings.compiled_pattern()),
            "fallback_number": int(number.group(1)) if number else None,
            "aliases": settings.field_aliases,
        }
        got = trial_json._context(path, "d", settings)
        assert got == expected
        got["factors"]["budget"] = "changed"
        assert trial_json._context(path, "d", settings) == expected


@settings(max_examples=500, deadline=None)
@given(
    st.one_of(
        st.floats(allow_nan=True, allow_infinity=True),
        st.integers(),
        st.booleans(),
        st.none(),
        st.sampled_from(["1.0", [1.0]]),
    )
)
def test_finite_or_none_equals_its_definition(value: Any) -> None:
    from hpo_analysis.derive import finite_or_none

    expected = float(value) if _finite(value) else None
    got = finite_or_none(value)
    assert type(got) is type(expected) and repr(got) == repr(expected)


def test_no_curve_nor_extra_fragment_is_the_general_one() -> None:
    assert pipeline._NO_CURVE_NOR_EXTRA == pipeline._fragment([], [], {})
    trial = Trial("s", 0, "COMPLETE", None, {}, {}, {}, (), {}, {}, {}, "f")
    assert pipeline._NO_CURVE_NOR_EXTRA == pipeline.heavy_fragment(trial)


def test_the_runner_file_hands_on_its_curve_json(tmp_path: Path) -> None:
    import orjson

    path = tmp_path / "s_2M_h1" / "trials" / "trial_0003.json"
    path.parent.mkdir(parents=True)
    curve = [{"epoch": i, "train_loss": 0.5, "val_loss": 0.4 - i / 100} for i in range(3)]
    raw = {"trial_number": 3, "value": 0.38, "user_attrs": {"learning_curve": curve}}
    path.write_text(json.dumps(raw, indent=2))
    read = trial_json.read_clean(path, "f", Settings())
    assert isinstance(read, CleanRead)
    (clean,) = read.trials
    assert isinstance(clean, CleanTrial) and clean.curve is not None
    assert clean.curve_json == orjson.dumps(clean.curve.entries)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(_CLEAN_ENTRY, max_size=4),
    st.dictionaries(
        st.sampled_from(["a", "b\udc80", "user_attrs"]),
        st.one_of(
            st.integers(-(2**70), 2**70),
            st.floats(allow_nan=True, allow_infinity=True),
            st.text(max_size=3),
            st.lists(st.none(), max_size=2),
        ),
        max_size=3,
    ),
    st.lists(st.fixed_dictionaries({"epoch": st.integers(0, 3), "value": st.just("NaN")})),
)
def test_a_fragment_from_the_curve_json_equals_the_one_from_the_entries(
    entries: list[dict[str, Any]], extra: dict[str, Any], non_finite: list[Any]
) -> None:
    import orjson

    expected = pipeline._fragment(entries, non_finite, extra)
    assert pipeline._fragment(entries, non_finite, extra, orjson.dumps(entries)) == expected


@settings(max_examples=500, deadline=None)
@given(_MERGE_ROW, st.dictionaries(_MERGE_NAMES, _MERGE_VALUE, max_size=2))
def test_merge_fold_of_nearly_equal_rows_equals_its_definition(
    mine: dict[str, Any], changes: dict[str, Any]
) -> None:
    """Rows that agree on every compared field but a few (or none): the fold's check of the
    agreeing case in one pass gives what the field-by-field definition gives."""
    _assert_fold_is_its_definition(mine, {**mine, **changes})


_GROUP_VALUE = st.sampled_from([None, 1, 2.5, math.nan, math.inf, "x", True, 2**70])


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["d_model", "n_layers", "n_heads", "d_ff", "param_count", "arch_idx"]),
        _GROUP_VALUE,
    ),
    st.dictionaries(
        st.sampled_from(
            ["lr", "epochs_config", "weight_decay", "warmup_steps", "dropout", "batch_size"]
        ),
        _GROUP_VALUE,
    ),
    st.dictionaries(
        st.sampled_from(
            [
                "val_loss",
                "val_accuracy",
                "train_accuracy",
                "duration_sec",
                "epochs_trained",
                "datetime_start",
                "datetime_complete",
            ]
        ),
        _GROUP_VALUE.filter(lambda v: v != 2**70),
    ),
)
def test_row_columns_read_from_each_group_equal_their_definition(
    arch: dict[str, Any], training: dict[str, Any], results: dict[str, Any]
) -> None:
    """The row's architecture, training and result columns, read from each group in one
    pass, are the group's values (None when absent), the float results as finite or None."""
    from hpo_analysis import derive

    trial = vars(Trial("s", 0, "COMPLETE", 0.5, arch, training, results, (), {}, {}, {}, "f"))
    row = derive._row(trial, derive._no_curve())
    for name in ("d_model", "n_layers", "n_heads", "d_ff", "param_count", "arch_idx"):
        assert repr(row[name]) == repr(arch.get(name))
    for name in ("lr", "epochs_config", "weight_decay", "warmup_steps", "dropout", "batch_size"):
        assert repr(row[name]) == repr(training.get(name))
    for name, column in (
        ("val_accuracy", "val_accuracy"),
        ("train_accuracy", "train_accuracy"),
        ("duration_sec", "duration_sec"),
        ("val_loss", "_results_val_loss"),
    ):
        value = results.get(name)
        expected = float(value) if _finite(value) else None
        assert repr(row[column]) == repr(expected)
    for name in ("epochs_trained", "datetime_start", "datetime_complete"):
        assert repr(row[name]) == repr(results.get(name))


# --- hpo_full.json read a batch of lines at a time ---------------------------------------------


def _trials_line_by_line(path: Path) -> tuple[list[tuple[int, int, Any]], str | None]:
    """The trials of hpo_full.json read line by line as the layout says (the reader as first
    written), and the error it stops with."""
    from hpo_analysis.fulljson import END_LINE, FullJsonError, _read_head, loads_strict

    found: list[tuple[int, int, Any]] = []
    with open(path, "rb") as handle:
        try:
            _, offset = _read_head(handle)
            previous_had_comma = True
            number = 0
            for line in handle:
                number += 1
                if line == END_LINE:
                    if number > 1 and previous_had_comma:
                        raise FullJsonError(f"trial {number - 1}: a comma before the closing ]")
                    if handle.read(1):
                        raise FullJsonError("data after the closing ]}")
                    return found, None
                if not previous_had_comma:
                    raise FullJsonError(f"trial {number}: no comma after the previous trial")
                previous_had_comma = line.endswith(b",\n")
                length = len(line) - 2 if previous_had_comma else len(line) - 1
                if not line.endswith(b"\n"):
                    raise FullJsonError(f"trial {number}: the file ends inside the trials array")
                try:
                    trial = loads_strict(line[:length])
                except ValueError as err:
                    raise FullJsonError(f"trial {number} is not strict JSON ({err})") from None
                if not isinstance(trial, dict):
                    raise FullJsonError(f"trial {number} is not an object")
                found.append((offset, length, trial))
                offset += len(line)
            raise FullJsonError("the file ends inside the trials array (no closing ]})")
        except FullJsonError as err:
            return found, str(err)


_TRIAL_LINE = st.one_of(
    st.dictionaries(
        st.sampled_from(["study", "trial_num", "learning_curve"]),
        st.one_of(
            st.integers(-3, 3),
            st.sampled_from([2**64, -(2**63) - 1, 10**19, 0.12345678901234567890123, "a,\nb"]),
            st.lists(st.floats(allow_nan=False, allow_infinity=False), max_size=3),
            st.text(alphabet='ab,]}\\"', max_size=3),
        ),
        max_size=3,
    ).map(lambda trial: json.dumps(trial).encode()),
    st.sampled_from([b"[1, 2]", b'{"a": NaN}', b'{"a": 1', b"", b"]}", b'{"a": 1}, {"b": 2}']),
)
_LINE_END = st.sampled_from([b",\n", b",\n", b",\n", b"\n", b""])


@settings(max_examples=400, deadline=None)
@given(
    st.lists(st.tuples(_TRIAL_LINE, _LINE_END), max_size=8),
    st.sampled_from([b"]}\n", b"]}\n", b"]}\nx", b"]}", b""]),
    st.sampled_from([1, 7, 40, 1 << 16]),
)
def test_trial_batches_equal_reading_line_by_line(
    lines: list[tuple[bytes, bytes]], end: bytes, batch_bytes: int
) -> None:
    from hpo_analysis import fulljson

    if lines and lines[-1][1] == b",\n" and end.startswith(b"]}"):  # the usual last line
        lines[-1] = (lines[-1][0], b"\n")
    data = b'{"metadata": {"n": 1},\n"trials": [\n' + b"".join(a + b for a, b in lines) + end
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "hpo_full.json"
        path.write_bytes(data)
        expected = _trials_line_by_line(path)
        original = fulljson.BATCH_BYTES
        fulljson.BATCH_BYTES = batch_bytes
        try:
            found: list[tuple[int, int, Any]] = []
            error = None
            _, trials = fulljson.read_full_json(path)
            try:
                for t in trials:
                    found.append((t.offset, t.length, t.trial))
            except fulljson.FullJsonError as err:
                error = str(err)
        finally:
            fulljson.BATCH_BYTES = original
    assert repr((found, error)) == repr(expected)


def test_trial_batches_take_the_quick_path_for_extracts_layout(tmp_path: Path) -> None:
    from hpo_analysis import fulljson

    body = b"".join(
        b'{"study":"s","trial_num":%d,"x":0.000151638687951275920},\n' % i for i in range(50)
    )
    path = tmp_path / "hpo_full.json"
    path.write_bytes(b'{"metadata": {},\n"trials": [\n' + body + b'{"trial_num":50}\n]}\n')
    calls = []
    original = fulljson._careful_line
    fulljson._careful_line = lambda *args: calls.append(args) or original(*args)  # type: ignore[assignment]
    try:
        _, batches = fulljson.read_full_json_batches(path)
        trials = [t for batch in batches for t in batch.trials]
    finally:
        fulljson._careful_line = original  # type: ignore[assignment]
    assert [t["trial_num"] for t in trials] == list(range(51))
    assert len(calls) == 1  # only the last line, which has no comma


@settings(max_examples=600, deadline=None)
@given(
    st.one_of(
        st.binary(max_size=60),
        st.text(alphabet="0123456789.e-, x\n", max_size=80).map(str.encode),
        st.lists(
            st.sampled_from(["1" * 19, "2" * 25, "3" * 18, ".", "0.", "-", ",", "e", "7"])
        ).map(lambda parts: "".join(parts).encode()),
    )
)
def test_long_integer_search_in_one_pass_equals_the_run_by_run_search(data: bytes) -> None:
    from hpo_analysis.jsonio import _may_hold_long_integer

    assert _may_hold_long_integer(data) == _long_run_by_run(data)


def _long_run_by_run(data: bytes) -> bool:
    """The definition: some run of digits not preceded by ".", of 20+ digits, or of 19+ after
    a "-" (runs found one by one)."""
    digits = data.translate(bytes.maketrans(b"123456789", b"000000000"))
    for match in re.finditer(rb"0+", digits):
        before = data[match.start() - 1] if match.start() else None
        length = match.end() - match.start()
        if before == 0x2E:  # a fraction
            continue
        if length >= 20 or (length >= 19 and before == 0x2D):
            return True
    return False


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.integers(0, 9), max_size=5),
    st.lists(st.tuples(st.integers(0, 4), st.integers(0, 60), st.sampled_from([None, 1, "x"]))),
    st.integers(0, 5),
    st.booleans(),
)
def test_batch_check_passes_only_where_every_trial_passes(
    seeds: list[int], changes: list[tuple[int, int, Any]], rows: int, schema: bool
) -> None:
    """A batch the quick check passes has no failure when checked trial by trial."""
    from hpo_analysis.schema_json import full_json_schema
    from hpo_analysis.validate import (
        _JSON_PLACES,
        _JSON_VALUES,
        _SUMMARY_NAMES,
        _batch_consistent,
        _csv_matches_json,
        _schema_failures,
        _sub_schema,
        _validators,
    )

    trials = [_a_trial(seed) for seed in seeds]
    values = [_JSON_VALUES(trial) for trial in trials][:rows]
    for which, where, value in changes:
        if which < len(trials) and where < len(_JSON_PLACES):
            group, name = _JSON_PLACES[where]
            node = trials[which].get(group) if group else trials[which]
            node[name] = value
    validators = _validators(_sub_schema(full_json_schema(), "trial")) if schema else None
    columns = {name: [row[i] for row in values] for i, name in enumerate(_SUMMARY_NAMES)}

    def same(row: tuple[Any, ...], trial: dict[str, Any]) -> bool:
        try:
            return row == _JSON_VALUES(trial)
        except (KeyError, TypeError):
            return False

    definition = all(map(same, values, trials)) and (
        validators is None or all(validators[1]([trial]) for trial in trials[: len(values)])
    )
    assert _batch_consistent(columns, trials, validators) == definition
    if definition:
        for row, trial in zip(values, trials, strict=False):
            assert _csv_matches_json(row, trial) == []
            if validators is not None:
                assert _schema_failures(validators[0], trial) == []


_STRICT_PIECES = st.sampled_from(
    [
        "18446744073709551616",
        "-9223372036854775809",
        "1764000000123456789",
        "NaN",
        "-Infinity",
        "1e400",
        '"\\ud800"',
        '"\\u003a"',
        '"é"',
        "0.000151638687951275920",
        "[]",
        '{"a": 1, "a": 2}',
    ]
)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(_STRICT_PIECES, max_size=4),
    st.sampled_from([b"", b"\xef\xbb\xbf", b"\xff"]),
    st.integers(0, 3),
)
def test_strict_load_of_an_output_is_the_standard_librarys(
    pieces: list[str], prefix: bytes, cut: int
) -> None:
    """validate's strict load gives the standard library's value, or its error message."""
    from hpo_analysis.validate import _load_strict, _strict_constant

    data = prefix + ("[" + ", ".join(pieces) + "]").encode()
    data = data[: len(data) - cut]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "f.json"
        path.write_bytes(data)

        def outcome(load: Any) -> str:
            try:
                return "value " + repr(load())
            except (ValueError, OSError) as err:
                return f"{type(err).__name__} {err}"

        def reference() -> Any:
            with open(path, encoding="utf-8") as handle:
                return json.load(handle, parse_constant=_strict_constant)

        assert outcome(lambda: _load_strict(path)) == outcome(reference)
