"""Real Optuna studies for the reader tests, written by Optuna itself in a separate process
(so its log lines go to stderr exactly as a user's run prints them).

Usage: ``python tests/optuna_runs.py DIR`` writes into DIR:

- ``contract.db`` + ``contract_journal.log`` + ``contract.log``: the same small study
  ``contract_20M_h3`` (minimize; completed, tied, diverged, pruned, failed and NaN trials)
  run once against a SQLite storage and once against a journal, with the log of the SQLite run;
- ``rich.db`` + ``rich_journal.log`` + ``rich.log``: several studies — ``search`` (minimize,
  pruner, failures, a learning_curve user attribute, a RUNNING and a WAITING trial),
  ``auc_max`` (maximize), ``multi`` (two objectives named accuracy/latency), ``gone`` (deleted
  afterwards), plus ``copied`` (trials added with ``add_trials``).

Everything is deterministic except the datetimes: parameters are enqueued, never sampled.
"""

from __future__ import annotations

import logging
import math
import os
import sqlite3
import sys
from pathlib import Path
from typing import Any

import optuna
from optuna.storages import JournalStorage, RDBStorage
from optuna.storages.journal import JournalFileBackend

CONTRACT_STUDY = "contract_20M_h3"
# (d_model, n_layers, n_heads, learning_rate, dropout, optimizer, outcome)
CONTRACT_TRIALS: list[tuple[int, int, int, float, float, str, str]] = [
    (64, 2, 4, 1e-3, 0.1, "adam", "ok"),
    (128, 4, 8, 3e-4, 0.2, "sgd", "ok"),
    (64, 2, 4, 1e-3, 0.1, "adam", "ok"),  # same value as trial 0: a tie
    (128, 8, 8, 1e-2, 0.0, "adam", "diverge"),
    (64, 4, 4, 5e-4, 0.3, "sgd", "prune"),
    (128, 2, 4, 2e-4, 0.1, "adam", "fail"),
    (64, 8, 8, 1e-4, 0.2, "sgd", "nan"),
    (128, 4, 4, 7e-4, 0.1, "adam", "ok"),
]


def contract_value(d_model: int, n_layers: int, lr: float, dropout: float) -> float:
    return round(0.2 + 0.01 * n_layers + 20 * lr + dropout / 10 + d_model / 10_000, 6)


def contract_objective(trial: optuna.Trial) -> float:
    d_model = trial.suggest_categorical("d_model", [64, 128])
    n_layers = trial.suggest_int("n_layers", 2, 8)
    trial.suggest_categorical("n_heads", [4, 8])
    lr = trial.suggest_float("learning_rate", 1e-5, 1e-1, log=True)
    dropout = trial.suggest_float("dropout", 0.0, 0.5)
    trial.suggest_categorical("optimizer", ["adam", "sgd"])
    outcome = trial.user_attrs["outcome"]
    value = contract_value(d_model, n_layers, lr, dropout)
    for step in range(3):
        trial.report(value + 0.1 * (2 - step), step)
    if outcome == "prune":
        raise optuna.TrialPruned()
    if outcome == "fail":
        raise RuntimeError("out of memory")
    if outcome == "nan":
        return math.nan
    if outcome == "diverge":
        return 25.0
    return value


def run_contract(storage: Any) -> None:
    study = optuna.create_study(study_name=CONTRACT_STUDY, storage=storage)
    for d_model, n_layers, n_heads, lr, dropout, opt, outcome in CONTRACT_TRIALS:
        study.enqueue_trial(
            {
                "d_model": d_model,
                "n_layers": n_layers,
                "n_heads": n_heads,
                "learning_rate": lr,
                "dropout": dropout,
                "optimizer": opt,
            },
            user_attrs={"outcome": outcome},
        )
    study.optimize(contract_objective, n_trials=len(CONTRACT_TRIALS), catch=(RuntimeError,))


def search_objective(trial: optuna.Trial) -> float:
    x = trial.suggest_float("x", -2.0, 2.0)
    width = trial.suggest_categorical("hidden_size", [32, 64, 128])
    trial.suggest_int("num_layers", 1, 6)
    if trial.number == 1:
        trial.set_user_attr(
            "learning_curve",
            [{"epoch": e, "train_loss": 1.0 - e / 10, "val_loss": 1.1 - e / 10} for e in range(3)],
        )
    trial.set_user_attr("width_seen", width)
    for step in range(4):
        trial.report(x * x + (3 - step) * 0.5, step)
        if trial.should_prune():
            raise optuna.TrialPruned()
    if trial.number % 7 == 5:
        raise ValueError("bad batch")
    return x * x


def run_rich(storage: Any) -> None:
    pruner = optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=1)
    search = optuna.create_study(study_name="search", storage=storage, pruner=pruner)
    for i in range(14):
        search.enqueue_trial(
            {
                "x": round(-1.9 + 0.29 * i, 3),
                "hidden_size": [32, 64, 128][i % 3],
                "num_layers": 1 + i % 6,
            }
        )
    search.optimize(search_objective, n_trials=14, catch=(ValueError,))
    running = search.ask()  # a trial still running: reported, never told
    running.suggest_float("x", -2.0, 2.0)
    running.report(0.7, 0)
    search.enqueue_trial({"x": 0.5, "hidden_size": 64, "num_layers": 2})  # stays WAITING

    auc = optuna.create_study(study_name="auc_max", storage=storage, direction="maximize")
    for i in range(6):
        auc.enqueue_trial({"lr": 10 ** (-4 + i / 2)})
    auc.optimize(
        lambda t: round(
            0.9 - abs(math.log10(t.suggest_float("lr", 1e-5, 1, log=True)) + 2.5) / 10, 6
        ),
        n_trials=6,
    )

    multi = optuna.create_study(
        study_name="multi", storage=storage, directions=["maximize", "minimize"]
    )
    multi.set_metric_names(["accuracy", "latency"])
    for i in range(5):
        multi.enqueue_trial({"width": 16 * (i + 1), "depth": 1 + i % 3})

    def two(trial: optuna.Trial) -> tuple[float, float]:
        width = trial.suggest_int("width", 16, 128)
        depth = trial.suggest_int("depth", 1, 4)
        return round(0.5 + width / 400 - depth / 50, 6), float(width * depth)

    multi.optimize(two, n_trials=5)

    gone = optuna.create_study(study_name="gone", storage=storage)
    gone.optimize(lambda t: t.suggest_float("y", 0, 1), n_trials=2)
    optuna.delete_study(study_name="gone", storage=storage)

    copied = optuna.create_study(study_name="copied", storage=storage)
    dist = {"x": optuna.distributions.FloatDistribution(0.0, 1.0)}
    copied.add_trials(
        [
            optuna.trial.create_trial(
                params={"x": i / 10},
                distributions=dist,
                value=i / 10,
                intermediate_values={0: 1.0, 1: i / 10},
                user_attrs={"epochs_run": 2},
            )
            for i in range(3)
        ]
    )


def sqlite_storage(path: Path) -> RDBStorage:
    """SQLite storage without waiting for the disk on every commit (the bytes written are
    the same; only durability against power loss, irrelevant here, is given up)."""

    def connect() -> sqlite3.Connection:
        connection = sqlite3.connect(str(path), check_same_thread=False)
        connection.execute("PRAGMA synchronous=OFF")
        return connection

    return RDBStorage(f"sqlite:///{path}", engine_kwargs={"creator": connect})


def main(directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    os.fsync = lambda fd: None  # the journal backend syncs every line; not needed for tests
    optuna.logging.set_verbosity(optuna.logging.INFO)
    root = logging.getLogger("optuna")
    formatter = logging.Formatter("[%(levelname)1.1s %(asctime)s] %(message)s")
    for name, run in (("contract", run_contract), ("rich", run_rich)):
        handler = logging.FileHandler(directory / f"{name}.log", encoding="utf-8")
        handler.setFormatter(formatter)
        root.addHandler(handler)
        run(sqlite_storage(directory / f"{name}.db"))
        root.removeHandler(handler)
        handler.close()
        run(JournalStorage(JournalFileBackend(str(directory / f"{name}_journal.log"))))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
