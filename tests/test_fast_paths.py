"""The speed paths give exactly what the general code gives, on generated inputs."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hpo_analysis import normalize
from hpo_analysis.derive import _finite, best_epoch, count_non_finite
from hpo_analysis.model import CurvePoint

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
