"""The alias tables of normalize.py as the readers use them (forced_* attributes, d_ff_ratio,
epochs_run, Optuna/Hugging Face spellings) and the val_loss rule for maximized objectives."""

from __future__ import annotations

import pytest

from hpo_analysis.normalize import normalize_trial


def _normalize(raw: dict[str, object]):  # type: ignore[no-untyped-def]
    trial = normalize_trial({"number": 0, "value": 0.5, **raw}, study="s", source_file="f")
    assert not hasattr(trial, "severity"), trial
    return trial


@pytest.mark.parametrize(
    ("params", "column", "expected"),
    [
        ({"hidden_size": 256}, "d_model", 256),
        ({"num_layers": 6}, "n_layers", 6),
        ({"nhead": 8}, "n_heads", 8),
        ({"num_attention_heads": 4}, "n_heads", 4),
        ({"dim_feedforward": 1024}, "d_ff", 1024),
        ({"d_model": 64, "d_ff_ratio": 4}, "d_ff", 256),
        ({"d_model": 64, "d_ff_ratio": 4, "d_ff": 100}, "d_ff", 100),  # given d_ff wins
        ({"lr": 0.01}, "lr", 0.01),
        ({"learning_rate": 0.02}, "lr", 0.02),
    ],
)
def test_parameter_aliases(params: dict[str, object], column: str, expected: object) -> None:
    trial = _normalize({"params": params})
    assert {**trial.architecture, **trial.training}[column] == expected


def test_forced_attributes_stand_in_for_params() -> None:
    attrs = {
        "forced_d_model": 64,
        "forced_n_layers": 6,
        "forced_learning_rate": 5e-5,
        "forced_d_ff_ratio": 2,
        "forced_optimizer": "adam",
        "forced_extreme": True,
        "epochs_run": 30,
        "duration_sec": 4.5,
    }
    trial = _normalize({"params": {}, "user_attrs": attrs})
    assert (trial.architecture["d_model"], trial.architecture["n_layers"]) == (64, 6)
    assert trial.architecture["d_ff"] == 128 and trial.training["lr"] == 5e-5
    assert trial.extra_params == {"d_ff_ratio": 2, "optimizer": "adam"}  # not "extreme"
    assert trial.results["epochs_trained"] == 30 and trial.results["duration_sec"] == 4.5
    both = _normalize({"params": {"d_model": 128}, "user_attrs": {"forced_d_model": 64}})
    assert both.architecture["d_model"] == 128
    assert [p.code for p in both.problems] == ["conflicting_values"]


def test_non_whole_d_ff_is_not_invented() -> None:
    trial = _normalize({"params": {"d_model": 10, "d_ff_ratio": 2.55}})
    assert trial.architecture["d_ff"] is None
    assert [p.code for p in trial.problems] == ["wrong_type"]


def test_val_loss_of_a_maximized_objective_comes_from_an_attribute() -> None:
    import dataclasses

    from hpo_analysis.derive import trial_row
    from hpo_analysis.model import Settings

    trial = _normalize({"value": 0.71, "user_attrs": {"val_loss": 0.42}})
    auc = dataclasses.replace(trial, objective_name="val_auc")
    assert trial_row(auc, Settings())["val_loss"] == 0.42
    assert trial_row(auc, Settings())["direction"] == "maximize"
    unnamed = dataclasses.replace(trial, direction="maximize", direction_source="optuna study")
    assert trial_row(unnamed, Settings())["val_loss"] == 0.42
    bare = _normalize({"value": 0.71})
    assert trial_row(bare, Settings())["val_loss"] == 0.71  # unnamed and minimized: a loss
    assert trial_row(bare, Settings(directions=(("*", "maximize"),)))["val_loss"] is None
