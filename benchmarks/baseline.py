"""The straightforward script a user would write for the same outputs, as a speed reference.

It reads every ``<study>/trials/*.json`` with ``json.load``, keeps a list of dicts, builds a
``pandas.DataFrame``, writes the summary and diverged CSVs with ``to_csv``, the trial and curve
tables with ``to_parquet``, and the full and diverged JSON files with ``json.dump(indent=2)``.
It does none of the checks ``extract`` does (no manifest, no validation, no handling of broken
files), so it is a lower bound on what such a script costs, not a replacement.

Usage::

    python benchmarks/baseline.py SOURCE_DIR OUT_DIR
"""

from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path
from typing import Any

import pandas as pd


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def summarize(path: Path, trial: dict[str, Any]) -> dict[str, Any]:
    study = path.parent.parent.name
    parts = study.split("_")
    attrs = trial.get("user_attrs", {})
    arch = trial.get("architecture") or attrs.get("architecture", {})
    params = trial.get("params", {})
    curve = attrs.get("learning_curve", [])
    finite = [e for e in curve if _finite(e.get("val_loss"))]
    best = min(finite, key=lambda e: e["val_loss"]) if finite else None
    value = trial.get("value")
    return {
        "study": study,
        "budget": parts[1] if len(parts) > 1 else None,
        "horizon": parts[2] if len(parts) > 2 else None,
        "trial_num": trial.get("trial_number"),
        "d_model": arch.get("d_model"),
        "n_layers": arch.get("n_layers"),
        "n_heads": arch.get("n_heads"),
        "d_ff": arch.get("d_ff"),
        "param_count": arch.get("param_count"),
        "arch_idx": params.get("arch_idx", attrs.get("arch_idx")),
        "lr": params.get("learning_rate"),
        "epochs_config": params.get("epochs"),
        "weight_decay": params.get("weight_decay"),
        "warmup_steps": params.get("warmup_steps"),
        "dropout": params.get("dropout"),
        "val_loss": value if _finite(value) else None,
        "train_loss": curve[-1].get("train_loss") if curve else None,
        "val_accuracy": attrs.get("val_accuracy"),
        "best_epoch": best["epoch"] if best else None,
        "best_val_loss": best["val_loss"] if best else None,
        "epochs_trained": len(curve),
        "early_stopped": bool(curve) and len(curve) < (params.get("epochs") or 0),
        "duration_sec": trial.get("duration_seconds"),
        "diverged": not _finite(value) or value >= 10.0,
        "state": trial.get("state"),
        "source_file": str(path),
    }


def main(source: str, out: str) -> None:
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    records: list[dict[str, Any]] = []
    curves: list[dict[str, Any]] = []
    full: list[dict[str, Any]] = []
    for path in sorted(Path(source).glob("*/trials/*.json")):
        with open(path) as handle:
            trial = json.load(handle)
        row = summarize(path, trial)
        records.append(row)
        curve = trial.get("user_attrs", {}).get("learning_curve", [])
        for entry in curve:
            curves.append({"study": row["study"], "trial_num": row["trial_num"], **entry})
        full.append({**row, "learning_curve": curve})
    df = pd.DataFrame(records)
    ranked = df[df["state"].eq("COMPLETE") & ~df["diverged"]]
    df["rank_in_study"] = ranked.groupby("study")["val_loss"].rank(method="min")
    df["is_best_in_study"] = df["rank_in_study"].eq(1)
    df.to_csv(out_dir / "hpo_summary.csv", index=False)
    df.to_parquet(out_dir / "trials.parquet", index=False)
    pd.DataFrame(curves).to_parquet(out_dir / "curves.parquet", index=False)
    diverged = df[df["diverged"]]
    diverged.to_csv(out_dir / "diverged_analysis.csv", index=False)
    keys = set(zip(diverged["study"], diverged["trial_num"], strict=True))
    with open(out_dir / "hpo_full.json", "w") as handle:
        json.dump({"n_trials": len(full), "trials": full}, handle, indent=2)
    with open(out_dir / "diverged_analysis.json", "w") as handle:
        json.dump([t for t in full if (t["study"], t["trial_num"]) in keys], handle, indent=2)
    print(f"{len(df)} trials, {len(diverged)} diverged", file=sys.stderr)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(f"usage: {os.path.basename(sys.argv[0])} SOURCE_DIR OUT_DIR")
    main(sys.argv[1], sys.argv[2])
