"""The explicit list of readers, and dispatch to the first one whose sniff claims a path.

A reader is a module with ``NAME``, ``FORMAT`` (the label written to the manifest and to each
trial's ``source_format``), one or more cheap sniff functions (the file name, at most the first
few KiB) and ``read(path, display, settings) -> ReadResult``. Order matters: name-based sniffs
come first (most specific first), content sniffs after them, so no two readers claim a file:

1. ``study_dump`` by name (``all_trials.json``, ``trials.json``, ``*_all_trials.json``) —
   before the per-trial reader, which would otherwise claim ``trials.json``;
2. ``keras_tuner`` (``trial_*/trial.json`` holding KerasTuner's ``trial_id`` and
   ``hyperparameters``) — by content, before the per-trial reader claims ``trial*.json``;
3. ``ray_tune`` (the newest ``experiment_state-*.json`` of a directory);
4. ``mlflow_store`` (an MLflow SQLite store, or an ``mlruns/<experiment>/meta.yaml``) —
   before ``optuna_storage``, which would otherwise claim every SQLite file;
5. ``trial_json`` (``<study>/trials/*.json``, ``trial*.json``);
6. ``study_meta`` (``best_params.json``);
7. ``optuna_storage`` (``.db``/``.sqlite`` with the SQLite header);
8. ``optuna_journal`` (first line a JSON object with ``op_code``, any name);
9. ``optuna_log`` (a text log holding Optuna trial lines);
10. ``study_dump`` by content (any other ``.json`` opening a list of trials);
11. ``runs_table`` (a ``.csv``/``.tsv``/``.parquet`` runs table: a W&B export, scikit-learn's
    ``cv_results_``, or the columns mapped in ``hpo-analysis.toml`` ``[table]``).

Example::

    >>> claim(Path("s/trials/trial_0001.json")), claim(Path("s/all_trials.json"))
    ('trial_json', 'study_dump')
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from types import ModuleType


@functools.cache
def _sniffers() -> tuple[tuple[ModuleType, Callable[[Path], bool]], ...]:
    """The readers' sniffs in dispatch order, built once (every file is claimed through it)."""
    from . import (
        keras_tuner,
        mlflow_store,
        optuna_journal,
        optuna_log,
        optuna_storage,
        ray_tune,
        runs_table,
        study_dump,
        study_meta,
        trial_json,
    )

    return (
        (study_dump, study_dump.sniff_name),
        (keras_tuner, keras_tuner.sniff),
        (ray_tune, ray_tune.sniff),
        (mlflow_store, mlflow_store.sniff),
        (trial_json, trial_json.sniff),
        (study_meta, study_meta.sniff),
        (optuna_storage, optuna_storage.sniff),
        (optuna_journal, optuna_journal.sniff),
        (optuna_log, optuna_log.sniff),
        (study_dump, study_dump.sniff_content),
        (runs_table, runs_table.sniff),
    )


def _readers() -> list[ModuleType]:
    readers: list[ModuleType] = []
    for reader, _ in _sniffers():
        if reader not in readers:
            readers.append(reader)
    return readers


def claim(path: Path) -> str | None:
    """Name of the first reader whose sniff claims ``path``, or None."""
    for reader, sniff in _sniffers():
        if sniff(path):
            return str(reader.NAME)
    return None


def ignore_reason(path: Path) -> str | None:
    """Why a file no reader claims is deliberately not read (e.g. a runner's side file)."""
    from . import keras_tuner, mlflow_store, ray_tune, study_dump

    for reader in (ray_tune, keras_tuner, mlflow_store, study_dump):
        reason: str | None = reader.ignore_reason(path)
        if reason:
            return reason
    return None


def reader_named(name: str) -> ModuleType:
    """The reader module called ``name`` (KeyError for no such reader)."""
    return _by_name()[name]


@functools.cache
def _by_name() -> dict[str, ModuleType]:
    return {str(reader.NAME): reader for reader in _readers()}
