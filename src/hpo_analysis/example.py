"""Generate a SIMULATED hyperparameter-optimization output tree for demos, tests and benchmarks.

Nothing written here comes from a real training run. The tree imitates what an Optuna-driven
runner writes for a "phase 6a" sweep: one study per (parameter budget, prediction horizon),
named ``phase6a_{budget}_{horizon}_threshold_1pct``, each holding one JSON file per trial under
``<study>/trials/trial_NNNN.json``. The modelled task is a binary classifier (does the move over
the horizon exceed a 1% threshold?) trained with early stopping, so the files carry the things
analysis code has to cope with in real sweeps:

* architectures picked from a per-budget list by ``arch_idx``, except the first three "forced
  extreme" trials per study, whose index lives only in ``user_attrs.arch_idx``;
* learning curves that decay, overfit into a U-shape and stop early (patience 10);
* a handful of diverged trials in the largest budget whose curves contain bare ``NaN`` /
  ``Infinity`` tokens (or a finite spike) and whose objective is the runner's sentinel 100.0.

Everything is derived from ``seed`` via :class:`random.Random` (string seeds, which hash with
SHA-512 and therefore do not depend on ``PYTHONHASHSEED``) and from a fixed base datetime, so
the same arguments always give a byte-identical tree.

Example::

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     paths = generate_example(Path(tmp), budgets=("2M", "2B"), horizons=("h1",),
    ...                              trials_per_study=5, n_diverged=1)
    ...     len(paths), paths[0].relative_to(tmp).as_posix()
    (14, 'phase6a_2B_h1_threshold_1pct/phase6a_2B_h1_threshold_1pct_2B_best.json')
"""

from __future__ import annotations

import argparse
import json
import math
import random
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

__all__ = [
    "architectures_for_budget",
    "generate_example",
    "main",
    "parse_budget",
    "study_name",
]

# --- fixed "runner" configuration ------------------------------------------------------------
# The search space of the simulated runner. Kept as module constants so that a reader of the
# generated data can see exactly which values were possible.
D_MODELS: tuple[int, ...] = (32, 64, 96, 128, 192, 256, 384, 512, 768, 1024, 1536, 2048)
N_LAYERS: tuple[int, ...] = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48)
N_HEADS: tuple[int, ...] = (1, 2, 4, 8, 16, 32)
MIN_HEAD_DIM = 16
EPOCH_CHOICES: tuple[int, ...] = (25, 50, 75, 100)
WARMUP_CHOICES: tuple[int, ...] = (0, 100, 250, 500, 1000)
BATCH_CHOICES: tuple[int, ...] = (32, 64, 128, 256)
N_FEATURES = 64  # input features projected to d_model (part of the "embedding")
CONTEXT_LEN = 128  # learned positional embedding rows
MIN_ARCHS = 15  # every budget's list has at least this many entries
BUDGET_TOLERANCE = 0.5  # keep architectures within budget * (1 +- 0.5)
N_FORCED = 3  # forced-extreme trials at the start of every study
PATIENCE = 10  # early stopping on val_loss
DIVERGED_VALUE = 100.0  # the runner's objective sentinel for a diverged trial
BASE_DATETIME = datetime(2025, 1, 15, 9, 0, 0)

_SUFFIXES = {"": 1, "K": 10**3, "M": 10**6, "B": 10**9, "T": 10**12}
_BUDGET_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMBT]?)\s*$", re.IGNORECASE)
_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%f"


@dataclass(frozen=True)
class _Arch:
    """One entry of a budget's architecture list."""

    d_model: int
    n_layers: int
    n_heads: int
    d_ff: int
    param_count: int

    def as_dict(self) -> dict[str, int]:
        return {
            "d_model": self.d_model,
            "n_layers": self.n_layers,
            "n_heads": self.n_heads,
            "d_ff": self.d_ff,
            "param_count": self.param_count,
        }


def parse_budget(budget: str) -> int:
    """Parameter count of a budget label such as ``"2M"``, ``"20M"``, ``"1.5B"`` or ``"500K"``.

    >>> parse_budget("2B"), parse_budget("20m"), parse_budget("1.5K")
    (2000000000, 20000000, 1500)
    """
    match = _BUDGET_RE.match(budget)
    if match is None:
        raise ValueError(f"budget {budget!r} is not a number with an optional K/M/B/T suffix")
    count = round(float(match.group(1)) * _SUFFIXES[match.group(2).upper()])
    if count <= 0:
        raise ValueError(f"budget {budget!r} must be a positive parameter count")
    return count


def _horizon_number(horizon: str) -> int:
    """The number in a horizon label (``"h3"`` -> 3); 1 when there is none."""
    match = re.search(r"\d+", horizon)
    return int(match.group()) if match else 1


def _param_count(d_model: int, n_layers: int, d_ff: int) -> int:
    """Exact parameter count of a pre-norm transformer encoder classifier (~12*L*d^2 + emb)."""
    attention = 4 * d_model * d_model + 4 * d_model
    feed_forward = 2 * d_model * d_ff + d_ff + d_model
    norms = 4 * d_model
    embedding = N_FEATURES * d_model + d_model + CONTEXT_LEN * d_model
    head = 2 * d_model + d_model + 1  # final norm + linear classifier
    return n_layers * (attention + feed_forward + norms) + embedding + head


def _head_options(d_model: int) -> list[int]:
    return [h for h in N_HEADS if d_model % h == 0 and d_model // h >= MIN_HEAD_DIM]


def _closest_heads(d_model: int, head_dim: int) -> int:
    """Head count whose head dimension is closest to ``head_dim`` (fewer heads on ties)."""
    target = math.log2(head_dim)
    return min(_head_options(d_model), key=lambda h: (abs(math.log2(d_model / h) - target), h))


@cache
def _architectures(budget_params: int) -> tuple[_Arch, ...]:
    """The runner's architecture list for a budget; see :func:`architectures_for_budget`."""
    preferred: list[_Arch] = []  # standard head dims; 2x FFN only with the standard head dim
    others: list[_Arch] = []  # remaining head counts, used only to reach MIN_ARCHS
    for d in D_MODELS:
        standard = _closest_heads(d, 64)
        small = _closest_heads(d, 32)
        for n_layers in N_LAYERS:
            for mult in (4, 2):
                d_ff = mult * d
                pc = _param_count(d, n_layers, d_ff)
                for heads in _head_options(d):
                    arch = _Arch(d, n_layers, heads, d_ff, pc)
                    if heads == standard or (mult == 4 and heads == small):
                        preferred.append(arch)
                    else:
                        others.append(arch)

    lo, hi = budget_params * (1 - BUDGET_TOLERANCE), budget_params * (1 + BUDGET_TOLERANCE)
    chosen = [a for a in preferred if lo <= a.param_count <= hi]
    if len(chosen) < MIN_ARCHS:
        chosen += [a for a in others if lo <= a.param_count <= hi][: MIN_ARCHS - len(chosen)]
    if len(chosen) < MIN_ARCHS:  # extreme budgets: fall back to the nearest shapes
        taken = set(chosen)

        def distance(a: _Arch) -> tuple[float, int, int, int, int]:
            return (
                abs(math.log(a.param_count / budget_params)),
                a.param_count,
                a.n_layers,
                a.d_model,
                a.n_heads,
            )

        rest = sorted((a for a in preferred + others if a not in taken), key=distance)
        chosen += rest[: MIN_ARCHS - len(chosen)]
    return tuple(
        sorted(chosen, key=lambda a: (a.param_count, a.n_layers, a.d_model, a.n_heads, a.d_ff))
    )


def architectures_for_budget(budget: str | int) -> list[dict[str, int]]:
    """The simulated runner's architecture list for ``budget``; ``arch_idx`` indexes it.

    Combinations of width, depth, heads and FFN ratio whose parameter count is within +-50% of
    the budget, sorted by parameter count (then depth, width, heads, d_ff). Shapes run from
    wide-shallow to narrow-deep where the budget allows; at least 15 entries (the nearest
    shapes are added for budgets the grid cannot reach).

    >>> archs = architectures_for_budget("2M")
    >>> len(archs) >= 15, archs[0]["param_count"] <= archs[-1]["param_count"]
    (True, True)
    """
    params = budget if isinstance(budget, int) else parse_budget(budget)
    return [a.as_dict() for a in _architectures(params)]


# --- per-study sampling ----------------------------------------------------------------------


@dataclass
class _Plan:
    """The sampled configuration of one trial, fixed before any curve is simulated."""

    number: int
    arch_idx: int
    forced: bool
    params: dict[str, Any]
    risk: float


def _log_uniform(rng: random.Random, low: float, high: float) -> float:
    return math.exp(rng.uniform(math.log(low), math.log(high)))


def _sample_plans(
    rng: random.Random, n_archs: int, n_trials: int, epoch_choices: Sequence[int]
) -> list[_Plan]:
    """Sample every trial's parameters (what Optuna's sampler would suggest).

    The draws are the same for forced and normal trials so that the forced override does not
    shift the random stream of later trials.
    """
    forced_idx = [0, n_archs - 1, (n_archs - 1) // 2]
    plans: list[_Plan] = []
    for number in range(n_trials):
        arch_idx = rng.randrange(n_archs)
        lr = _log_uniform(rng, 1e-5, 1e-2)
        epochs = rng.choice(epoch_choices)
        weight_decay = _log_uniform(rng, 1e-6, 1e-2)
        warmup = rng.choice(WARMUP_CHOICES)
        dropout = round(rng.uniform(0.0, 0.5), 3)
        batch_size = rng.choice(BATCH_CHOICES)
        risk_noise = rng.gauss(0.0, 0.35)
        forced = number < N_FORCED
        if forced:
            arch_idx = forced_idx[number]
        params = {
            "arch_idx": arch_idx,
            "learning_rate": lr,
            "epochs": epochs,
            "weight_decay": weight_decay,
            "warmup_steps": warmup,
            "dropout": dropout,
            "batch_size": batch_size,
        }
        plans.append(_Plan(number, arch_idx, forced, params, risk_noise))
    return plans


def _divergence_risk(plan: _Plan, arch: _Arch) -> float:
    """Seeded "risk" of blowing up: high lr and depth raise it, warm-up lowers it."""
    lr = plan.params["learning_rate"]
    warmup = plan.params["warmup_steps"]
    return (
        1.6 * math.log10(lr / 1e-5)
        + 0.9 * math.log2(arch.n_layers)
        - 0.0012 * warmup
        + plan.risk  # the seeded noise drawn in _sample_plans
    )


# --- learning-curve simulation ---------------------------------------------------------------


@dataclass
class _Split:
    n_train: int
    n_val: int
    pos_rate: float


def _split_for(seed: int, horizon: str) -> _Split:
    """Dataset split of a horizon: the same for every budget, as it is the same data."""
    rng = random.Random(f"{seed}:split:{horizon}")
    n = _horizon_number(horizon)
    total = 52_000 + rng.randint(-600, 600) - 12 * n  # longer horizons lose the last rows
    n_val = int(total * 0.2)
    pos_rate = round(min(0.49, 0.42 + 0.012 * n + rng.uniform(-0.01, 0.01)), 4)
    return _Split(total - n_val, n_val, pos_rate)


def _auc(rng: random.Random, val_loss: float) -> float:
    """A val AUC loosely tied to the loss (lower loss, better ranking) plus noise."""
    auc = 0.5 + 1.8 * max(0.0, 0.693 - val_loss) + rng.gauss(0.0, 0.006)
    return round(min(0.97, max(0.4, auc)), 6)


def _simulate_healthy(
    rng: random.Random, arch: _Arch, params: dict[str, Any], horizon_n: int, split: _Split
) -> list[dict[str, Any]]:
    """Epoch records of a trial that trains normally, cut by early stopping (patience 10).

    val_loss = floor + (start - floor) * exp(-k t) + overfit(t) + noise: the floor rises with
    the horizon and with a poor fit (depth far from ~6 layers, extreme aspect ratio, learning
    rate far from a size-dependent optimum, too-high lr worse than too-low); overfitting starts
    later and grows more slowly with more dropout.
    """
    lr = params["learning_rate"]
    dropout = params["dropout"]
    log_p = math.log10(arch.param_count / 2e6)
    lr_opt = 1e-3 * 10 ** (-0.25 * log_p)
    r = math.log10(lr / lr_opt)
    depth_pen = 0.008 * (math.log2(arch.n_layers) - math.log2(6)) ** 2
    aspect_pen = 0.002 * math.log2(arch.d_model / (16 * arch.n_layers)) ** 2
    lr_pen = 0.015 * r * r + 0.03 * max(0.0, r)
    wd_pen = 0.0005 * (math.log10(params["weight_decay"]) + 4) ** 2
    start = 0.69 + rng.uniform(0.0, 0.2)
    floor = (
        0.585
        + 0.015 * horizon_n
        - 0.008 * max(0.0, log_p)
        + depth_pen
        + aspect_pen
        + lr_pen
        + wd_pen
        + rng.gauss(0.0, 0.006)
    )
    floor = min(floor, start - 0.03)

    k = min(0.8, max(0.015, 0.12 * (lr / lr_opt) ** 0.6 * rng.uniform(0.8, 1.25)))
    steps_per_epoch = max(1, split.n_train // params["batch_size"])
    warm_epochs = params["warmup_steps"] / steps_per_epoch
    onset = (5.0 / k) * (0.8 + 1.6 * dropout) * rng.uniform(0.8, 1.25)
    slope = 0.0009 * max(0.15, 1.25 - 1.8 * dropout) * (1 + 0.25 * max(0.0, log_p))
    noise = 0.0012 + 0.0015 * rng.random()

    curve: list[dict[str, Any]] = []
    best = math.inf
    best_epoch = 0
    for epoch in range(params["epochs"]):
        t = (epoch + 1) - 0.5 * min(epoch + 1, warm_epochs)
        over = max(0.0, t - onset)
        val = floor + (start - floor) * math.exp(-k * t) + slope * over**1.4
        val = round(val + rng.gauss(0.0, noise), 6)
        t_floor = floor - 0.02 - 0.04 * (0.5 - dropout)
        train = t_floor + (start - t_floor) * math.exp(-1.1 * k * t) - 0.6 * slope * over**1.2
        train = round(max(0.05, train + rng.gauss(0.0, noise / 2)), 6)
        curve.append(
            {"epoch": epoch, "train_loss": train, "val_loss": val, "val_auc": _auc(rng, val)}
        )
        if val < best:
            best, best_epoch = val, epoch
        elif epoch - best_epoch >= PATIENCE:
            break
    return curve


def _diverge(
    rng: random.Random, curve: list[dict[str, Any]], kind: str, epochs: int
) -> list[dict[str, Any]]:
    """Turn a healthy curve into a diverged one of the given ``kind``.

    Kinds: ``nan`` (both losses NaN), ``inf`` (train Infinity, val Infinity or NaN),
    ``train_nan`` (train NaN, val finite but huge), ``spike`` (finite huge losses one epoch
    before NaN) and ``clean`` (the curve just stops; only the objective says diverged).
    Training stops 0-2 epochs after the blow-up; those epochs are all NaN.
    """
    last_possible = min(len(curve), epochs) - 1
    at = max(0, min(rng.randint(1, 15), last_possible))
    if kind == "spike":
        at = max(0, min(at, epochs - 2))
    out = curve[:at]
    nan = float("nan")
    inf = float("inf")
    if kind == "clean":
        return curve[: at + 1]
    if kind == "nan":
        out.append({"epoch": at, "train_loss": nan, "val_loss": nan, "val_auc": nan})
    elif kind == "inf":
        val = inf if rng.random() < 0.5 else nan
        out.append({"epoch": at, "train_loss": inf, "val_loss": val, "val_auc": nan})
    elif kind == "train_nan":
        out.append(
            {
                "epoch": at,
                "train_loss": nan,
                "val_loss": round(rng.uniform(12.0, 60.0), 4),
                "val_auc": 0.5,
            }
        )
    elif kind == "spike":
        huge = round(rng.choice((37.5, rng.uniform(15.0, 90.0))), 4)
        out.append(
            {"epoch": at, "train_loss": huge, "val_loss": round(huge * 1.07, 4), "val_auc": 0.5}
        )
        if at + 1 < epochs:
            at += 1
            out.append({"epoch": at, "train_loss": nan, "val_loss": nan, "val_auc": nan})
    else:  # pragma: no cover - internal misuse
        raise ValueError(f"unknown divergence kind {kind!r}")
    for epoch in range(at + 1, min(epochs, at + 1 + rng.randint(0, 2))):
        out.append({"epoch": epoch, "train_loss": nan, "val_loss": nan, "val_auc": nan})
    return out


_DIVERGE_KINDS = ("nan", "inf", "spike", "nan", "inf", "train_nan", "nan")


def _diverge_kind(position: int, n_diverged: int) -> str:
    """Deterministic mix of kinds; with enough diverged trials one is a clean stop."""
    if n_diverged >= 6 and position == n_diverged - 1:
        return "clean"
    return _DIVERGE_KINDS[position % len(_DIVERGE_KINDS)]


def _classification_metrics(
    rng: random.Random, auc: float | None, split: _Split, overfit_gap: float
) -> tuple[float, float, dict[str, int]]:
    """val/train accuracy and a val confusion matrix consistent with each other.

    ``auc=None`` models a diverged network: NaN scores compare false, so everything is
    predicted negative.
    """
    pos = round(split.n_val * split.pos_rate)
    neg = split.n_val - pos
    if auc is None:
        tp, tn = 0, neg
        train_acc = 1.0 - split.pos_rate
    else:
        recall = min(0.98, max(0.02, 0.35 + 1.2 * (auc - 0.5) + rng.gauss(0.0, 0.03)))
        spec = min(0.98, max(0.02, 0.62 + 0.6 * (auc - 0.5) + rng.gauss(0.0, 0.02)))
        tp, tn = round(pos * recall), round(neg * spec)
        train_acc = 0.0
    confusion = {"tp": tp, "fp": neg - tn, "tn": tn, "fn": pos - tp}
    val_acc = (tp + tn) / split.n_val
    if auc is not None:
        train_acc = min(0.999, val_acc + 0.005 + overfit_gap + rng.uniform(0.0, 0.01))
    return round(val_acc, 6), round(train_acc, 6), confusion


def _seconds_per_epoch(arch: _Arch, batch_size: int) -> float:
    """Wall time per epoch: grows sublinearly with size, smaller batches are a bit slower."""
    return (1.0 + 0.05 * (arch.param_count / 1e6) ** 0.8) * (128 / batch_size) ** 0.2


def _trial_record(
    plan: _Plan,
    arch: _Arch,
    value: float,
    start: datetime,
    duration_us: int,
    curve: list[dict[str, Any]],
    metrics: tuple[float, float, dict[str, int]],
    split: _Split,
) -> dict[str, Any]:
    params = dict(plan.params)
    if plan.forced:
        del params["arch_idx"]
    training = {k: v for k, v in plan.params.items() if k != "arch_idx"}
    attrs: dict[str, Any] = {}
    if plan.forced:
        attrs["arch_idx"] = plan.arch_idx
    val_acc, train_acc, confusion = metrics
    attrs.update(
        {
            "architecture": arch.as_dict(),
            "training_params": training,
            "learning_curve": curve,
            "val_accuracy": val_acc,
            "train_accuracy": train_acc,
            "val_confusion": confusion,
            "split_stats": {
                "n_train": split.n_train,
                "n_val": split.n_val,
                "pos_rate": split.pos_rate,
            },
        }
    )
    end = start + timedelta(microseconds=duration_us)
    return {
        "trial_number": plan.number,
        "value": value,
        "state": "COMPLETE",
        "params": params,
        "datetime_start": start.strftime(_TIME_FORMAT),
        "datetime_complete": end.strftime(_TIME_FORMAT),
        "duration_seconds": duration_us / 1e6,
        "architecture": arch.as_dict(),
        "user_attrs": attrs,
    }


def study_name(budget: str, horizon: str) -> str:
    """``phase6a_{budget}_{horizon}_threshold_1pct``, the runner's study naming."""
    return f"phase6a_{budget}_{horizon}_threshold_1pct"


def generate_example(
    out_dir: Path,
    *,
    seed: int = 0,
    budgets: Sequence[str] = ("2M", "20M", "200M", "2B"),
    horizons: Sequence[str] = ("h1", "h3", "h5"),
    trials_per_study: int = 50,
    n_diverged: int = 14,
    max_epochs: int = 100,
) -> list[Path]:
    """Write the tree; return the written file paths sorted.

    One study per (budget, horizon) with ``trials_per_study`` trials each. Exactly
    ``n_diverged`` trials diverge, all in the largest budget and spread over its horizons as
    evenly as possible: in each horizon the trials with the highest seeded risk. Existing files
    at the same paths are overwritten; other files in ``out_dir`` are left alone.

    Raises ValueError for empty budgets/horizons, unparseable budgets, non-positive
    ``trials_per_study``/``max_epochs``, a negative ``n_diverged`` or more diverged trials
    than the largest budget has.
    """
    budgets = list(budgets)
    horizons = list(horizons)
    if not budgets or not horizons:
        raise ValueError("budgets and horizons must not be empty")
    if len(set(budgets)) != len(budgets) or len(set(horizons)) != len(horizons):
        raise ValueError("budgets and horizons must not repeat")
    if trials_per_study < 1:
        raise ValueError("trials_per_study must be at least 1")
    if max_epochs < 1:
        raise ValueError("max_epochs must be at least 1")
    if n_diverged < 0:
        raise ValueError("n_diverged must not be negative")
    budget_params = {b: parse_budget(b) for b in budgets}
    largest = max(budgets, key=lambda b: budget_params[b])  # first of equals wins
    if n_diverged > trials_per_study * len(horizons):
        raise ValueError(
            f"n_diverged={n_diverged} exceeds the {trials_per_study * len(horizons)} trials "
            f"of the largest budget {largest}"
        )
    epoch_choices = sorted({min(e, max_epochs) for e in EPOCH_CHOICES})

    # Diverged trials per horizon of the largest budget: n // H each, the first n % H get one
    # more.
    quota = {
        h: n_diverged // len(horizons) + (i < n_diverged % len(horizons))
        for i, h in enumerate(horizons)
    }
    out_dir = Path(out_dir)
    written: list[Path] = []
    diverge_position = 0
    study_index = 0
    for budget in budgets:
        archs = _architectures(budget_params[budget])
        for horizon in horizons:
            name = study_name(budget, horizon)
            split = _split_for(seed, horizon)
            plans = _sample_plans(
                random.Random(f"{seed}:{name}:params"),
                len(archs),
                trials_per_study,
                epoch_choices,
            )
            diverged: set[int] = set()
            if budget == largest and quota[horizon]:
                ranked = sorted((-_divergence_risk(p, archs[p.arch_idx]), p.number) for p in plans)
                diverged = {number for _, number in ranked[: quota[horizon]]}

            timing = random.Random(f"{seed}:{name}:timing")
            clock = BASE_DATETIME + timedelta(
                hours=2 * study_index, seconds=round(timing.uniform(0, 600), 3)
            )
            study_index += 1
            trial_dir = out_dir / name / "trials"
            trial_dir.mkdir(parents=True, exist_ok=True)
            horizon_n = _horizon_number(horizon)
            records: list[dict[str, Any]] = []
            for plan in plans:
                arch = archs[plan.arch_idx]
                rng = random.Random(f"{seed}:{name}:{plan.number}:curve")
                curve = _simulate_healthy(rng, arch, plan.params, horizon_n, split)
                if plan.number in diverged:
                    kind = _diverge_kind(diverge_position, n_diverged)
                    diverge_position += 1
                    curve = _diverge(rng, curve, kind, plan.params["epochs"])
                    value = DIVERGED_VALUE
                    metrics = _classification_metrics(rng, None, split, 0.0)
                else:
                    best = min(curve, key=lambda e: (e["val_loss"], e["epoch"]))
                    value = best["val_loss"]
                    gap = max(0.0, best["val_loss"] - curve[-1]["train_loss"]) * 0.5
                    metrics = _classification_metrics(rng, best["val_auc"], split, gap)

                seconds = len(curve) * _seconds_per_epoch(
                    arch, plan.params["batch_size"]
                ) * timing.uniform(0.92, 1.08) + timing.uniform(3.0, 12.0)
                duration_us = round(seconds * 1e6)
                clock += timedelta(microseconds=round(timing.uniform(0.05, 1.5) * 1e6))
                record = _trial_record(plan, arch, value, clock, duration_us, curve, metrics, split)
                clock += timedelta(microseconds=duration_us)
                path = trial_dir / f"trial_{plan.number:04d}.json"
                path.write_bytes((json.dumps(record, indent=2) + "\n").encode("utf-8"))
                written.append(path)
                records.append(record)
            for file_name, content in study_files(name, budget, records).items():
                (out_dir / name / file_name).write_bytes(
                    (json.dumps(content, indent=2) + "\n").encode("utf-8")
                )
                written.append(out_dir / name / file_name)
    return sorted(written)


OPTUNA_VERSION = "3.6.1"  # written into the best-trial file, as the runner records it
DUMP_ARCH_KEYS = ("d_model", "n_layers", "n_heads", "param_count")


def study_files(
    study: str, budget: str, records: Sequence[dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    """The two files the runner rewrites in the study folder after every trial.

    - ``<study>_all_trials.json``: the COMPLETE trials only, sorted by value, each with the
      architecture keys flat at the top level, no curve, no state and no dates;
    - ``<study>_<budget>_best.json``: the best trial's parameters, value and architecture, and
      the number of trials by state.
    """
    complete = [r for r in records if r["state"] == "COMPLETE"]
    ordered = sorted(complete, key=lambda r: (r["value"], r["trial_number"]))
    timestamp = max(r["datetime_complete"] for r in records)
    trials = []
    for r in ordered:
        attrs = r["user_attrs"]
        trials.append(
            {
                "trial_number": r["trial_number"],
                "value": r["value"],
                "params": r["params"],
                "duration_seconds": r["duration_seconds"],
                **{k: r["architecture"][k] for k in DUMP_ARCH_KEYS},
                "val_accuracy": attrs["val_accuracy"],
                "train_accuracy": attrs["train_accuracy"],
            }
        )
    dump = {
        "experiment": study,
        "budget": budget,
        "n_trials": len(trials),
        "timestamp": timestamp,
        "trials": trials,
    }
    best = ordered[0]
    best_file = {
        "experiment": study,
        "budget": budget,
        "best_params": best["params"],
        "best_value": best["value"],
        "best_trial_number": best["trial_number"],
        "n_trials_completed": len(complete),
        "n_trials_pruned": sum(1 for r in records if r["state"] == "PRUNED"),
        "n_trials_running": sum(1 for r in records if r["state"] == "RUNNING"),
        "timestamp": timestamp,
        "study_name": study,
        "optuna_version": OPTUNA_VERSION,
        "architecture": best["architecture"],
    }
    return {f"{study}_all_trials.json": dump, f"{study}_{budget}_best.json": best_file}


def main(argv: list[str] | None = None) -> int:
    """Command line: ``python -m hpo_analysis.example DIR [options]``."""
    parser = argparse.ArgumentParser(
        prog="python -m hpo_analysis.example",
        description="Write a SIMULATED, seeded hyperparameter-optimization output tree.",
    )
    parser.add_argument("dir", metavar="DIR", type=Path, help="output directory")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument(
        "--trials-per-study", type=int, default=50, help="trials in every study (default 50)"
    )
    parser.add_argument(
        "--budgets",
        default="2M,20M,200M,2B",
        help="comma-separated parameter budgets (default 2M,20M,200M,2B)",
    )
    parser.add_argument(
        "--horizons", default="h1,h3,h5", help="comma-separated horizons (default h1,h3,h5)"
    )
    parser.add_argument(
        "--n-diverged",
        type=int,
        default=14,
        help="diverged trials, all in the largest budget (default 14)",
    )
    parser.add_argument(
        "--max-epochs", type=int, default=100, help="cap on the sampled epoch counts (default 100)"
    )
    args = parser.parse_args(argv)

    def split_list(text: str) -> list[str]:
        return [part.strip() for part in text.split(",") if part.strip()]

    try:
        paths = generate_example(
            args.dir,
            seed=args.seed,
            budgets=split_list(args.budgets),
            horizons=split_list(args.horizons),
            trials_per_study=args.trials_per_study,
            n_diverged=args.n_diverged,
            max_epochs=args.max_epochs,
        )
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"wrote {len(paths)} simulated files under {args.dir}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
