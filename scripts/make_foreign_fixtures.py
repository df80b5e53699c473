"""Write the small real examples of other tools' output that the readers are tested on.

Each example is produced by the real library, so the tests pin the layout those libraries
really write (not our idea of it). The libraries are NOT dependencies of hpo-analysis: install
them in a throw-away environment and rerun this script when a format needs refreshing::

    python -m venv /tmp/fixtures-env
    /tmp/fixtures-env/bin/pip install 'ray[tune]' mlflow-skinny sqlalchemy alembic \
        scikit-learn pandas keras-tuner keras jax
    KERAS_BACKEND=jax /tmp/fixtures-env/bin/python scripts/make_foreign_fixtures.py \
        tests/fixtures [ray] [keras_tuner] [mlflow] [sklearn]

Each example is tiny (a few trials, a few epochs of a made-up loss or a tiny model) and every
run is seeded. Ray Tune's scheduler decisions depend on timing, so a rerun may stop other
trials: the tests check rules, not fixed numbers.
"""

from __future__ import annotations

import math
import os
import shutil
import sys
from pathlib import Path


def _loss_curve(lr: float, width: int, epoch: int) -> tuple[float, float]:
    """A made-up but plausible loss: faster with a larger lr, unstable when lr is too large."""
    if lr > 0.5:
        return (math.inf if epoch >= 2 else 1.0 + epoch * 20.0), 0.1
    base = 0.3 + 8.0 / width
    val = base + math.exp(-lr * 40 * (epoch + 1))
    return val, max(0.0, 1.0 - val / 2)


def make_ray(root: Path) -> None:
    """An ASHA experiment of 10 trials: a nested param space, one trial that raises, one
    that diverges (loss to inf), the rest stopped early by the scheduler or run to the end."""
    import ray
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler
    from ray.tune.search.basic_variant import BasicVariantGenerator

    report = getattr(tune, "report", None)

    def trainable(config: dict) -> None:  # type: ignore[type-arg]
        if config["optimizer"] == "sgd" and config["lr"] < 0.002:
            raise RuntimeError("simulated out-of-memory in the data loader")
        for epoch in range(8):
            val, acc = _loss_curve(config["lr"], config["model"]["width"], epoch)
            metrics = {"val_loss": val, "train_loss": val * 0.9, "val_acc": acc}
            if report is not None:
                report(metrics)
            else:  # Ray < 2.7
                from ray import train

                train.report(metrics)

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        tuner = tune.Tuner(
            trainable,
            param_space={
                "lr": tune.grid_search(
                    [0.1, 0.05, 0.0005, 0.3, 0.003, 0.001, 0.7, 0.01, 0.2, 0.03]
                ),
                "optimizer": tune.choice(["adam", "sgd"]),
                "model": {"width": tune.choice([16, 64]), "depth": tune.randint(1, 4)},
            },
            tune_config=tune.TuneConfig(
                metric="val_loss",
                mode="min",
                scheduler=ASHAScheduler(max_t=8, grace_period=2, reduction_factor=2),
                search_alg=BasicVariantGenerator(random_state=7),
                num_samples=1,
                max_concurrent_trials=2,
            ),
            run_config=tune.RunConfig(
                name="asha_width_lr", storage_path=str(root.resolve()), verbose=0
            )
            if hasattr(tune, "RunConfig")
            else ray.train.RunConfig(name="asha_width_lr", storage_path=str(root.resolve())),
        )
        tuner.fit()
    finally:
        ray.shutdown()


def make_keras_tuner(root: Path) -> None:
    """A RandomSearch project of 8 trials on a tiny synthetic classification problem; its
    boolean ``dropout`` hyperparameter is the name clash the reader must not fall into."""
    import keras
    import keras_tuner
    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.normal(size=(256, 8)).astype("float32")
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype("float32")

    def build(hp: keras_tuner.HyperParameters) -> keras.Model:
        model = keras.Sequential([keras.Input((8,))])
        model.add(keras.layers.Dense(hp.Int("units", 4, 32, step=4), activation="relu"))
        if hp.Boolean("dropout"):
            model.add(keras.layers.Dropout(0.25))
        model.add(keras.layers.Dense(1, activation="sigmoid"))
        lr = hp.Float("learning_rate", 1e-3, 1e-1, sampling="log")
        model.compile(
            optimizer=keras.optimizers.Adam(lr), loss="binary_crossentropy", metrics=["accuracy"]
        )
        return model

    keras.utils.set_random_seed(0)
    tuner = keras_tuner.RandomSearch(
        build,
        objective="val_accuracy",
        max_trials=8,
        seed=3,
        directory=str(root),
        project_name="kt_random_units",
        overwrite=True,
    )
    tuner.search(x[:192], y[:192], validation_data=(x[192:], y[192:]), epochs=3, verbose=0)
    project = root / "kt_random_units"
    for heavy in project.glob("trial_*/checkpoint*"):  # model weights: not needed, not small
        heavy.unlink()


def make_mlflow(root: Path) -> None:
    """One sweep logged twice, to a SQLite store and to an ``mlruns/`` file store: a parent
    run named after the sweep, six child runs with params and per-epoch metrics, one failed."""
    os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"  # the file store, still common on disk
    import mlflow

    for uri, where in (
        (f"sqlite:///{(root / 'mlflow_sqlite' / 'mlflow.db').resolve()}", root / "mlflow_sqlite"),
        ((root / "mlflow_files" / "mlruns").resolve().as_uri(), root / "mlflow_files"),
    ):
        where.mkdir(parents=True, exist_ok=True)
        mlflow.set_tracking_uri(uri)
        mlflow.set_experiment("mlp_sweep")
        with mlflow.start_run(run_name="sweep_lr_width"):
            mlflow.log_param("sampler", "grid")
            for index, (lr, width) in enumerate(
                [(0.001, 16), (0.01, 16), (0.1, 16), (0.001, 64), (0.01, 64), (0.9, 64)]
            ):
                with mlflow.start_run(run_name=f"trial_{index}", nested=True):
                    mlflow.log_params({"lr": lr, "width": width, "optimizer": "adam"})
                    for epoch in range(4):
                        val, acc = _loss_curve(lr, width, epoch)
                        if not math.isfinite(val):
                            break
                        mlflow.log_metrics(
                            {"val_loss": val, "train_loss": val * 0.9, "val_acc": acc},
                            step=epoch,
                        )
                    if lr > 0.5:  # diverged: the run is marked failed
                        mlflow.end_run(status="FAILED")
        mlflow.set_tracking_uri("")


def make_sklearn(root: Path) -> None:
    """``cv_results_`` of a small grid search, written with pandas as users do."""
    import pandas as pd
    from sklearn.datasets import load_iris
    from sklearn.model_selection import GridSearchCV
    from sklearn.svm import SVC

    x, y = load_iris(return_X_y=True)
    search = GridSearchCV(
        SVC(), {"C": [0.1, 1.0, 10.0], "kernel": ["linear", "rbf"], "shrinking": [True]}, cv=3
    )
    search.fit(x, y)
    folder = root / "sklearn_svc_grid"
    folder.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(search.cv_results_).to_csv(folder / "cv_results.csv", index=False)


MAKERS = {
    "ray": make_ray,
    "keras_tuner": make_keras_tuner,
    "mlflow": make_mlflow,
    "sklearn": make_sklearn,
}


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__)
        return 2
    root = Path(argv[0])
    names = argv[1:] or list(MAKERS)
    for name in names:
        target = root / name
        if target.exists():
            shutil.rmtree(target)
        target.mkdir(parents=True)
        MAKERS[name](target)
        print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("KERAS_BACKEND", "jax")
    sys.exit(main(sys.argv[1:]))
