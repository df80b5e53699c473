"""Hyperparameter importance per budget with Optuna's PED-ANOVA evaluator (optional extra)."""

from __future__ import annotations

import functools
import importlib.util
import warnings
from typing import Any

import numpy as np

from ..errors import import_detached
from ..finding import (
    IMPORTANCE_PARAMS,
    MAX_IMPORTANCE_TRIALS,
    MIN_IMPORTANCE_TRIALS,
    Finding,
)
from .cells import (
    _finding,
    _r3,
    fmt,
)
from .frame import (
    Budget,
    Frame,
    Rows,
    Tally,
    _scored,
    as_frame,
    per_budget,
)

IMPORTANCE_NOT_INSTALLED = "not computed: install hpo-analysis[optuna]"
MAX_CHOICES = 16


def _optuna_installed() -> bool:
    try:
        return importlib.util.find_spec("optuna") is not None
    except (ImportError, ValueError):  # ValueError: sys.modules["optuna"] is None
        return False


@functools.cache
def _hashed_once(cls: type) -> type:
    """``cls`` (an Optuna distribution class) whose instances compute their hash once.

    PED-ANOVA sorts every trial into a regime keyed by its distribution, hashing the
    distribution once per trial and parameter, and an Optuna distribution hashes the sorted
    items of its ``__dict__`` every time (a tenth of the evaluator's time at 3,000 trials a
    budget). The hash is kept in a slot, outside ``__dict__``, so equality, ``repr`` and the
    JSON form stay the distribution's own; the class keeps its name for the same reason.
    """

    class Hashed(cls):
        __slots__ = ("_hash",)

        def __hash__(self) -> int:
            try:
                return self._hash
            except AttributeError:
                self._hash: int = super().__hash__()
                return self._hash

    Hashed.__name__, Hashed.__qualname__ = cls.__name__, cls.__qualname__
    return Hashed


def _distribution(values: np.ndarray, *, hashed_once: bool = False) -> Any:
    """An Optuna distribution for the observed values (None for a constant parameter).

    Whole numbers with at most ``MAX_CHOICES`` distinct values (d_model, n_heads, batch size:
    picked from a list by the runner) become a CategoricalDistribution of those values; other
    numbers an Int/FloatDistribution over the observed range, on a log scale when all values
    are positive and span at least a factor of 10. With ``hashed_once`` the distribution is
    of the class :func:`_hashed_once` makes of it (what the evaluator is given).
    """
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    def kind(cls: type) -> Any:
        return _hashed_once(cls) if hashed_once else cls

    low, high = float(values.min()), float(values.max())
    if low == high:
        return None
    whole = bool((values == np.round(values)).all())
    distinct = np.unique(values)
    if whole and len(distinct) <= MAX_CHOICES:
        choices = sorted(int(v) for v in distinct)
        return kind(CategoricalDistribution)(choices)
    log = low > 0 and high / low >= 10
    if whole:
        return kind(IntDistribution)(int(low), int(high), log=log)
    return kind(FloatDistribution)(low, high, log=log)


def _sample(n: int, size: int) -> np.ndarray:
    """A seeded random sample of ``size`` of ``n`` row positions, in row order (pandas'
    ``sample(n=size, random_state=0)``: legacy ``RandomState(0).choice`` without
    replacement).

    >>> _sample(10, 3).tolist()
    [2, 4, 8]
    """
    return np.sort(np.random.RandomState(0).choice(n, size=size, replace=False))


class _ScoredTrials:
    """What Optuna's importance evaluator reads of a study — its direction and its COMPLETE
    trials — without a study: ``study.add_trials`` deep-copies every trial into an in-memory
    storage, which cost ~6 of the ~8 CPU seconds of importance for 5,000 trials."""

    def __init__(self, trials: list[Any], direction: str) -> None:
        from optuna.study import StudyDirection

        self._trials = trials
        self.directions = [
            StudyDirection.MAXIMIZE if direction == "maximize" else StudyDirection.MINIMIZE
        ]

    @property
    def direction(self) -> Any:
        return self.directions[0]

    def _is_multi_objective(self) -> bool:
        return False

    def get_trials(self, deepcopy: bool = True, states: Any = None) -> list[Any]:
        return list(self._trials)  # all COMPLETE; never modified by the evaluator


def _importance(scored: Frame, direction: str) -> tuple[list[str], dict[str, float]]:
    import_detached("optuna.importance")  # not from this deep stack: see import_detached
    import optuna
    from optuna.distributions import FloatDistribution
    from optuna.importance import PedAnovaImportanceEvaluator
    from optuna.trial import FrozenTrial, TrialState

    if len(scored) > MAX_IMPORTANCE_TRIALS:
        scored = scored.take(_sample(len(scored), MAX_IMPORTANCE_TRIALS))
    params = [p for p in IMPORTANCE_PARAMS if not np.isnan(scored[p]).any()]
    distributions = {p: _distribution(scored[p], hashed_once=True) for p in params}
    distributions = {p: d for p, d in distributions.items() if d is not None}
    if not distributions:
        return [], {}
    names = list(distributions)
    # every parameter's values as Python numbers, column by column
    columns = [
        scored[p].tolist()
        if isinstance(distributions[p], FloatDistribution)
        else [int(v) for v in scored[p].tolist()]
        for p in names
    ]
    trials = [
        FrozenTrial(
            number=number,
            trial_id=number,  # PED-ANOVA tells trials apart by their ids
            state=TrialState.COMPLETE,
            value=objective,
            values=None,
            datetime_start=None,
            datetime_complete=None,
            params=dict(zip(names, values, strict=True)),
            distributions=distributions,
            user_attrs={},
            system_attrs={},
            intermediate_values={},
        )
        for number, (objective, *values) in enumerate(
            zip(scored["objective"].tolist(), *columns, strict=True)
        )
    ]
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                result = optuna.importance.get_param_importances(
                    _ScoredTrials(trials, direction),  # type: ignore[arg-type]
                    evaluator=PedAnovaImportanceEvaluator(),
                )
            except (AttributeError, TypeError):  # an Optuna that asks the study for more
                study = optuna.create_study(
                    direction="maximize" if direction == "maximize" else "minimize"
                )
                study.add_trials(trials)
                result = optuna.importance.get_param_importances(
                    study, evaluator=PedAnovaImportanceEvaluator()
                )
    finally:
        optuna.logging.set_verbosity(verbosity)
    return list(distributions), {k: float(v) for k, v in result.items()}


def param_importance(rows: Rows) -> Finding:
    """Hyperparameter importance per budget with Optuna's PED-ANOVA evaluator.

    The scored trials of a budget are rebuilt as Optuna trials (distributions inferred from the
    observed values, see :func:`_distribution`) and evaluated with
    ``PedAnovaImportanceEvaluator`` (defaults: which parameters set the best 10 % of trials
    apart from all of them); importances are normalized to sum to 1. Needs the ``optuna``
    extra.
    """
    title = "Hyperparameter importance per budget (Optuna PED-ANOVA)"
    columns = ["budget", "n", "parameter", "importance", "rank"]
    notes = (
        "optuna.importance.PedAnovaImportanceEvaluator with its defaults (target quantile 0.1 "
        "of the scored trials against all of them), normalized to sum to 1; parameters: "
        f"{', '.join(IMPORTANCE_PARAMS)} where known for every scored trial and not constant; "
        f"whole numbers with ≤ {MAX_CHOICES} distinct values are categorical, others "
        "int/float ranges over the observed values (log scale when positive and spanning "
        f"≥ 10×); needs ≥ {MIN_IMPORTANCE_TRIALS} scored trials per budget; budgets with more "
        f"than {MAX_IMPORTANCE_TRIALS} are evaluated on a seeded random sample of "
        f"{MAX_IMPORTANCE_TRIALS} of them (n stays the number of scored trials)."
    )
    if not _optuna_installed():  # imported only when a budget has enough trials
        return _finding(
            "param_importance",
            "Hyperparameter importance",
            title,
            columns,
            [],
            IMPORTANCE_NOT_INSTALLED + ".",
            0,
            notes,
        )
    frame = as_frame(rows)

    def compute(entry: Budget, tally: Tally) -> None:
        budget, scored, n = entry.label, entry.trials, entry.n
        table, parts = tally.table, tally.parts
        try:
            _, importances = _importance(scored, str(entry.direction))
        except ImportError:  # optuna older than 3.6 has no PED-ANOVA
            table.append([budget, n, None, IMPORTANCE_NOT_INSTALLED + " (optuna>=3.6)", None])
            parts.append(f"{budget} {IMPORTANCE_NOT_INSTALLED} (optuna>=3.6)")
            return
        except Exception as err:  # an evaluator failure must not stop the extraction
            tally.keep = False  # and another run may compute it
            table.append([budget, n, None, f"not computed: {type(err).__name__}", None])
            parts.append(f"{budget} not computed ({type(err).__name__})")
            return
        if not importances:
            table.append([budget, n, None, "no varying parameter", None])
            return
        tally.total += n
        ordered = sorted(importances.items(), key=lambda item: (-round(item[1], 3), item[0]))
        for rank, (name, value) in enumerate(ordered, start=1):
            table.append([budget, n, name, _r3(value), rank])
        first = table[-len(ordered)]
        parts.append(f"{budget} {first[2]} ({fmt(first[3])}, n = {n})")

    def short(budget: Budget, marker: str) -> list[Any]:
        return [budget.label, budget.n, None, marker, None]

    tally = per_budget(
        frame,
        compute,
        select=_scored,
        directed=True,
        min_n=MIN_IMPORTANCE_TRIALS,
        short=short,
        count=False,  # n counts the budgets whose importance was computed
    )
    table, parts, total = tally.table, tally.parts, tally.total
    sentence = (
        "Most important parameter per budget (PED-ANOVA, share of total importance): "
        + "; ".join(parts)
        + "."
        if parts
        else "No trials were read."
    )
    return _finding(
        "param_importance",
        "Hyperparameter importance",
        title,
        columns,
        table,
        sentence,
        total,
        notes,
    )
