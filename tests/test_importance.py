"""Parameter importance is computed on the trials as built, without Optuna's in-memory study
copies, and equals what Optuna computes through a real study."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from hpo_analysis import analyze


@pytest.mark.parametrize("direction", ["minimize", "maximize"])
def test_importance_equals_optuna_through_a_study(direction: str) -> None:
    optuna = pytest.importorskip("optuna")
    from optuna.importance import PedAnovaImportanceEvaluator

    rng = np.random.default_rng(3)
    n = 300
    frame = pd.DataFrame({"objective": rng.random(n)})
    for name in analyze.IMPORTANCE_PARAMS:
        if name in ("d_model", "n_heads", "n_layers", "batch_size"):
            frame[name] = rng.choice([16, 32, 64, 128], n)
        else:
            frame[name] = rng.random(n) * 1e-3 + 1e-5
    frame["objective"] += frame["lr"] * 300  # one parameter that matters
    names, ours = analyze._importance(frame, direction)

    distributions = {p: analyze._distribution(frame[p]) for p in names}
    floats = {
        p for p, d in distributions.items() if isinstance(d, optuna.distributions.FloatDistribution)
    }
    study = optuna.create_study(direction=direction)
    study.add_trials(
        [
            optuna.trial.create_trial(
                value=float(r["objective"]),
                params={p: float(r[p]) if p in floats else int(r[p]) for p in names},
                distributions=distributions,
            )
            for r in frame[["objective", *names]].to_dict("records")
        ]
    )
    expected = optuna.importance.get_param_importances(
        study, evaluator=PedAnovaImportanceEvaluator()
    )
    assert ours == pytest.approx(dict(expected), rel=1e-12)
    assert max(ours, key=ours.__getitem__) == "lr"  # the parameter that drives the objective


@pytest.mark.parametrize("direction", ["minimize", "maximize"])
def test_distributions_that_hash_once_give_the_same_importances(
    direction: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    optuna = pytest.importorskip("optuna")
    rng = np.random.default_rng(11)
    n = 200
    frame = pd.DataFrame({"objective": rng.random(n)})
    for name in analyze.IMPORTANCE_PARAMS:
        if name in ("d_model", "n_heads"):
            frame[name] = rng.choice([16, 32, 64, 128], n)
        elif name in ("n_layers", "batch_size"):
            frame[name] = rng.integers(1, 40, n)  # whole numbers, too many for categories
        else:
            frame[name] = rng.random(n) * 1e-3 + 1e-5
    frame["objective"] += frame["dropout"] * 500
    names, hashed = analyze._importance(frame, direction)

    plain = analyze._distribution(frame["d_model"])
    once = analyze._distribution(frame["d_model"], hashed_once=True)
    assert type(plain) is optuna.distributions.CategoricalDistribution
    assert repr(once) == repr(plain) and once.__dict__ == plain.__dict__
    assert hash(once) == hash(once) and {once: 1}[once] == 1
    assert optuna.distributions.distribution_to_json(once) == (
        optuna.distributions.distribution_to_json(plain)
    )

    from hpo_analysis.analyze import importance

    monkeypatch.setattr(importance, "_hashed_once", lambda cls: cls)
    assert analyze._importance(frame, direction) == (names, hashed)
