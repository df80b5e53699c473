"""Unit tests for hpo_analysis.normalize, with expectations computed by hand."""

from __future__ import annotations

import math
from typing import Any

import pytest

from hpo_analysis.model import Problem, Settings, Trial
from hpo_analysis.normalize import normalize_trial, parse_study_factors


def norm(raw: dict[str, Any], **kwargs: Any) -> Trial | Problem:
    return normalize_trial(raw, study="s", source_file="s/trial_3.json", **kwargs)


def trial(raw: dict[str, Any], **kwargs: Any) -> Trial:
    result = norm(raw, **kwargs)
    assert isinstance(result, Trial), result
    return result


def codes(t: Trial) -> list[str]:
    return [p.code for p in t.problems]


def base(**overrides: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {"trial_number": 3, "value": 0.5, "state": "COMPLETE", "params": {}}
    raw.update(overrides)
    return raw


# --- a clean trial ---------------------------------------------------------------------------


def test_clean_trial_has_no_problems() -> None:
    t = trial(
        base(
            params={
                "learning_rate": 0.001,
                "d_model": 64,
                "n_layers": 4,
                "n_heads": 2,
                "epochs": 20,
            }
        )
    )
    assert t.study == "s"
    assert t.source_file == "s/trial_3.json"
    assert t.trial_num == 3
    assert t.state == "COMPLETE"
    assert t.objective == 0.5
    assert t.training["lr"] == 0.001
    assert t.training["epochs_config"] == 20
    assert t.architecture["d_model"] == 64
    assert t.architecture["n_layers"] == 4
    assert t.architecture["n_heads"] == 2
    assert t.problems == ()
    assert t.extra == {}


# --- state -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw_state", "expected"),
    [
        ("TrialState.COMPLETE", "COMPLETE"),
        ("COMPLETE", "COMPLETE"),
        ("TrialState.PRUNED", "PRUNED"),
        ("TrialState.FAIL", "FAIL"),
        ("RUNNING", "RUNNING"),
    ],
)
def test_state_spellings(raw_state: str, expected: str) -> None:
    t = trial(base(state=raw_state))
    assert t.state == expected
    assert "unknown_state" not in codes(t)


def test_unknown_state_becomes_unknown_with_warning() -> None:
    t = trial(base(state="EXPLODED"))
    assert t.state == "UNKNOWN"
    matching = [p for p in t.problems if p.code == "unknown_state"]
    assert len(matching) == 1
    assert matching[0].severity == "warning"


# --- architecture ----------------------------------------------------------------------------


def test_arch_idx_from_user_attrs_when_missing_from_params() -> None:
    t = trial(base(params={"d_model": 64}, user_attrs={"arch_idx": 7}))
    assert t.architecture["arch_idx"] == 7
    assert t.problems == ()


def test_arch_idx_from_params() -> None:
    t = trial(base(params={"arch_idx": 2}))
    assert t.architecture["arch_idx"] == 2


def test_arch_idx_missing_everywhere_is_none() -> None:
    t = trial(base())
    assert t.architecture["arch_idx"] is None


# --- number coercion -------------------------------------------------------------------------


def test_learning_rate_string_becomes_float_with_warning() -> None:
    t = trial(base(params={"learning_rate": "0.001"}))
    assert t.training["lr"] == 0.001
    assert isinstance(t.training["lr"], float)
    assert codes(t) == ["number_as_string"]
    assert t.problems[0].severity == "warning"


def test_null_value_becomes_none_without_warning() -> None:
    t = trial(base(params={"learning_rate": None, "d_model": None}))
    assert t.training["lr"] is None
    assert t.architecture["d_model"] is None
    assert t.problems == ()


def test_boolean_learning_rate_is_wrong_type() -> None:
    t = trial(base(params={"learning_rate": True}))
    assert t.training["lr"] is None
    assert codes(t) == ["wrong_type"]


def test_boolean_integer_field_is_wrong_type() -> None:
    t = trial(base(params={"epochs": False}))
    assert t.training["epochs_config"] is None
    assert codes(t) == ["wrong_type"]


def test_boolean_objective_is_wrong_type() -> None:
    t = trial(base(value=True))
    assert t.objective is None
    assert "wrong_type" in codes(t)


# --- trial number ----------------------------------------------------------------------------


def test_missing_trial_number_uses_fallback() -> None:
    raw = base()
    del raw["trial_number"]
    t = trial(raw, fallback_number=12)
    assert t.trial_num == 12
    assert codes(t) == ["trial_number_from_name"]
    assert t.problems[0].severity == "warning"


def test_missing_trial_number_without_fallback_is_rejected() -> None:
    raw = base()
    del raw["trial_number"]
    result = norm(raw)
    assert isinstance(result, Problem)
    assert result.severity == "rejected"


def test_null_trial_number_without_fallback_is_rejected() -> None:
    result = norm(base(trial_number=None))
    assert isinstance(result, Problem)
    assert result.severity == "rejected"


def test_unusable_trial_number_uses_fallback() -> None:
    t = trial(base(trial_number="abc"), fallback_number=4)
    assert t.trial_num == 4
    assert "trial_number_from_name" in codes(t)


def test_trial_number_zero_is_a_number() -> None:
    t = trial(base(trial_number=0))
    assert t.trial_num == 0
    assert t.problems == ()


# --- conflicting sources ---------------------------------------------------------------------


def test_conflicting_params_and_training_params_first_wins() -> None:
    t = trial(base(params={"learning_rate": 0.001}, user_attrs={"training_params": {"lr": 0.01}}))
    assert t.training["lr"] == 0.001
    assert codes(t) == ["conflicting_values"]


def test_agreeing_sources_no_conflict() -> None:
    t = trial(base(params={"learning_rate": 0.001}, user_attrs={"training_params": {"lr": 0.001}}))
    assert t.training["lr"] == 0.001
    assert t.problems == ()


def test_training_params_used_when_params_lack_it() -> None:
    t = trial(base(user_attrs={"training_params": {"epochs": 30, "batch_size": 64}}))
    assert t.training["epochs_config"] == 30
    assert t.training["batch_size"] == 64
    assert t.problems == ()


# --- unknown keys are kept -------------------------------------------------------------------


def test_unknown_keys_go_to_extra() -> None:
    t = trial(base(foo=1, notes="hi", user_attrs={"bar": 2, "arch_idx": 1}))
    assert t.extra == {"foo": 1, "notes": "hi", "user_attrs": {"bar": 2}}


def test_no_unknown_user_attrs_no_user_attrs_in_extra() -> None:
    t = trial(base(foo=[1, 2], user_attrs={"arch_idx": 1}))
    assert t.extra == {"foo": [1, 2]}


# --- learning curve --------------------------------------------------------------------------


def curve_of(t: Trial, key: str = "val_loss") -> list[tuple[int, Any]]:
    return [(p.epoch, p.metrics.get(key)) for p in t.curve]


def test_curve_in_order_no_problems() -> None:
    lc = [{"epoch": 0, "val_loss": 1.0}, {"epoch": 1, "val_loss": 0.8}]
    t = trial(base(user_attrs={"learning_curve": lc}))
    assert curve_of(t) == [(0, 1.0), (1, 0.8)]
    assert t.problems == ()


def test_curve_unsorted_is_sorted_with_warning() -> None:
    lc = [
        {"epoch": 2, "val_loss": 0.5},
        {"epoch": 0, "val_loss": 0.9},
        {"epoch": 1, "val_loss": 0.7},
    ]
    t = trial(base(user_attrs={"learning_curve": lc}))
    assert curve_of(t) == [(0, 0.9), (1, 0.7), (2, 0.5)]
    assert codes(t) == ["curve_unsorted"]


def test_curve_duplicate_epoch_keeps_first() -> None:
    lc = [
        {"epoch": 0, "val_loss": 1.0},
        {"epoch": 0, "val_loss": 2.0},
        {"epoch": 1, "val_loss": 0.9},
    ]
    t = trial(base(user_attrs={"learning_curve": lc}))
    assert curve_of(t) == [(0, 1.0), (1, 0.9)]
    assert codes(t) == ["curve_duplicate_epoch"]


def test_curve_non_dict_entries_skipped() -> None:
    lc = [{"epoch": 0, "val_loss": 1.0}, 5, "x", None, [1], {"epoch": 1, "val_loss": 0.9}]
    t = trial(base(user_attrs={"learning_curve": lc}))
    assert curve_of(t) == [(0, 1.0), (1, 0.9)]
    assert codes(t) == ["curve_entry_invalid"]


def test_curve_nan_values_kept_as_float_nan() -> None:
    lc = [
        {"epoch": 0, "train_loss": 1.0, "val_loss": float("nan")},
        {"epoch": 1, "train_loss": float("inf"), "val_loss": 0.9},
    ]
    t = trial(base(user_attrs={"learning_curve": lc}))
    first, second = t.curve
    assert isinstance(first.metrics["val_loss"], float)
    assert math.isnan(first.metrics["val_loss"])  # type: ignore[arg-type]
    assert first.metrics["train_loss"] == 1.0
    assert second.metrics["train_loss"] == math.inf
    assert t.problems == ()


def test_nan_objective_kept() -> None:
    t = trial(base(value=float("nan")))
    assert t.objective is not None and math.isnan(t.objective)


# --- parse_study_factors ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("study", "expected"),
    [
        ("phase6a_2B_h3_threshold_1pct", {"budget": "2B", "horizon": "h3"}),
        ("hpo_20m_h1", {"budget": "20M", "horizon": "h1"}),
        ("nofactors", {"budget": None, "horizon": None}),
        ("H12_500k", {"budget": "500K", "horizon": "h12"}),
        ("run_1pct", {"budget": None, "horizon": None}),
    ],
)
def test_parse_study_factors_default_pattern(study: str, expected: dict[str, str | None]) -> None:
    assert parse_study_factors(study, Settings().compiled_pattern()) == expected
