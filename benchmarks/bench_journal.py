"""Optuna journal: ``optuna.load_study(...).trials`` against the direct reader.

Writes a journal of N trials (default 28,000, the size of a public report of slow loading)
with Optuna itself, then times both readings (median of 3 each) and prints the figures.
Every trial has 7 parameters (float, log-float, int, categorical), 3 user attributes and
10 intermediate values, written through ``study.add_trials`` (one CREATE_TRIAL operation per
trial, the fastest way to write a large journal) plus N/10 (at most 200) trials run through
``study.optimize`` (the operation-per-call path: SET_TRIAL_PARAM, report, state).

Run: ``python benchmarks/bench_journal.py [--trials N] [--keep PATH]`` (needs optuna).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path


def write_journal(path: Path, n_trials: int) -> None:
    import optuna
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = JournalStorage(JournalFileBackend(str(path)))
    study = optuna.create_study(study_name="bench", storage=storage, direction="maximize")
    distributions = {
        "d_model": CategoricalDistribution([64, 128, 256, 512]),
        "n_layers": IntDistribution(2, 24),
        "n_heads": CategoricalDistribution([4, 8, 16]),
        "learning_rate": FloatDistribution(1e-5, 1e-2, log=True),
        "dropout": FloatDistribution(0.0, 0.5),
        "weight_decay": FloatDistribution(1e-6, 1e-2, log=True),
        "optimizer": CategoricalDistribution(["adam", "adamw", "sgd"]),
    }
    n_run = min(200, n_trials // 10)

    def objective(trial: optuna.Trial) -> float:
        lr = trial.suggest_float("learning_rate", 1e-5, 1e-2, log=True)
        for step in range(10):
            trial.report(0.5 + step * lr, step)
        return 0.5 + lr

    study.optimize(objective, n_trials=n_run)
    batch = []
    for number in range(n_trials - n_run):
        params = {
            "d_model": [64, 128, 256, 512][number % 4],
            "n_layers": 2 + number % 23,
            "n_heads": [4, 8, 16][number % 3],
            "learning_rate": 1e-5 * (1 + number % 997),
            "dropout": (number % 50) / 100,
            "weight_decay": 1e-6 * (1 + number % 89),
            "optimizer": ["adam", "adamw", "sgd"][number % 3],
        }
        batch.append(
            optuna.trial.create_trial(
                params=params,
                distributions=distributions,
                value=0.5 + (number % 1000) / 4000,
                user_attrs={"epochs_run": 10 + number % 40, "duration_sec": 1.5, "seed": number},
                intermediate_values={step: 0.5 + step / 100 for step in range(10)},
            )
        )
        if len(batch) == 2000:
            study.add_trials(batch)
            batch = []
    study.add_trials(batch)


def median_seconds(run: Callable[[], int], repeat: int = 3) -> tuple[float, int]:
    times, count = [], 0
    for _ in range(repeat):
        start = time.perf_counter()
        count = run()
        times.append(time.perf_counter() - start)
    return statistics.median(times), count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=28_000)
    parser.add_argument("--keep", type=Path, help="write the journal here and keep it")
    args = parser.parse_args(argv)

    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    from hpo_analysis.sources.optuna_journal import replay_journal

    if args.keep is not None and args.keep.exists():
        parser.error(f"{args.keep} exists; give a new path")
    with tempfile.TemporaryDirectory() as tmp:
        path = args.keep or Path(tmp) / "journal.log"
        start = time.perf_counter()
        write_journal(path, args.trials)
        written = time.perf_counter() - start
        size = path.stat().st_size

        def with_optuna() -> int:
            storage = JournalStorage(JournalFileBackend(str(path)))
            return len(optuna.load_study(study_name="bench", storage=storage).trials)

        def direct() -> int:
            replay = replay_journal(path)
            return sum(len(s.trial_ids) for s in replay.studies.values())

        optuna_s, optuna_n = median_seconds(with_optuna)
        direct_s, direct_n = median_seconds(direct)
    if optuna_n != direct_n:
        print(f"trial counts differ: optuna {optuna_n}, direct {direct_n}", file=sys.stderr)
        return 1
    print(f"journal: {direct_n} trials, {size / 2**20:.1f} MiB (written in {written:.1f} s)")
    print(f"optuna {optuna.__version__} load_study().trials: {optuna_s:.3f} s (median of 3)")
    print(f"direct reader (replay_journal):        {direct_s:.3f} s (median of 3)")
    print(f"ratio: {optuna_s / direct_s:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
