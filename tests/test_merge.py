"""Several records of one trial (per-trial file, study dump, best file, Optuna storage) give one
complete row; disagreements are conflicts; the divergence rule follows each study's scale."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Any

import pytest

from hpo_analysis import extract
from hpo_analysis.example import generate_example
from hpo_analysis.merge import Record, merge_records
from hpo_analysis.model import Settings
from hpo_analysis.schema import SEED_COLUMNS

from .conftest import read_csv, run_cli, write_trial

LINEAGE = {"source_file", "source_format", "sources", "direction_source"}


@pytest.fixture(scope="module")
def runner_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The runner's full output tree: per-trial files, a dump and a best file per study."""
    root = tmp_path_factory.mktemp("runner") / "hpo"
    generate_example(
        root, budgets=("2M", "2B"), horizons=("h1", "h3"), trials_per_study=8, n_diverged=3
    )
    return root


def _extract(sources: list[Path | str], out: Path, **settings: Any) -> list[dict[str, str]]:
    result = extract(sources, out, Settings(**settings), jobs=1)
    assert result.validation_failures == []
    return read_csv(out / "hpo_summary.csv")


def _by_key(rows: list[dict[str, str]]) -> dict[tuple[str, str], dict[str, str]]:
    return {(r["study"], r["trial_num"]): r for r in rows}


def _without(rows: list[dict[str, str]], names: set[str]) -> list[dict[str, str]]:
    return [{k: v for k, v in r.items() if k not in names} for r in rows]


def _manifest(out: Path) -> dict[str, dict[str, str]]:
    return {Path(m["path"]).name: m for m in read_csv(out / "manifest.csv")}


def test_full_tree_equals_the_trial_files_alone(runner_tree: Path, tmp_path: Path) -> None:
    full = _extract([runner_tree], tmp_path / "full")
    alone = _extract(sorted(runner_tree.glob("*/trials")), tmp_path / "alone")
    assert len(full) == 32
    assert _without(full, LINEAGE) == _without(alone, LINEAGE)
    manifest = _manifest(tmp_path / "full")
    assert {m["status"] for m in manifest.values()} == {"ok"}
    dumps = [m for name, m in manifest.items() if name.endswith("_all_trials.json")]
    assert len(dumps) == 4
    for dump in dumps:  # every dump trial folded into the richer per-trial record
        assert dump["n_trials"] == "0" and dump["n_merged"] == "8"
        assert "8 trial(s) merged into per-trial JSON records" in dump["reason"]
    best = [m for name, m in manifest.items() if name.endswith("_best.json")]
    assert len(best) == 4 and all(m["format"] == "study metadata" for m in best)
    for row in full:
        assert row["sources"].split("; ")[0] == row["source_file"]
        assert row["sources"].split("; ")[1].endswith("_all_trials.json")
    seed_filled = {c for c in SEED_COLUMNS if all(r[c] != "" for r in full)}
    assert {"d_model", "n_layers", "n_heads", "d_ff", "param_count", "best_epoch"} <= seed_filled


def test_a_dump_alone_reads_its_flat_architecture(runner_tree: Path, tmp_path: Path) -> None:
    dumps = sorted(runner_tree.glob("*/*_all_trials.json"))
    rows = _extract(dumps, tmp_path / "dumps")
    assert len(rows) == 32
    for row in rows:
        assert row["state"] == "COMPLETE"  # a COMPLETE-only dump implies it
        assert row["d_model"] and row["n_layers"] and row["n_heads"] and row["param_count"]
        assert row["val_accuracy"] and row["train_accuracy"]
        assert row["d_ff"] == ""  # not in the dump: left empty, not guessed
    full = _by_key(_extract([runner_tree], tmp_path / "full"))
    for row in rows:
        rich = full[(row["study"], row["trial_num"])]
        for name in ("d_model", "n_layers", "n_heads", "param_count", "lr", "val_accuracy"):
            assert row[name] == rich[name], name


def test_a_disagreement_is_a_conflict_naming_both_files(runner_tree: Path, tmp_path: Path) -> None:
    tree = tmp_path / "hpo"
    shutil.copytree(runner_tree, tree)
    dump = next(tree.glob("*2M_h1*/*_all_trials.json"))
    data = json.loads(dump.read_text())
    target = data["trials"][0]
    number, kept_value = target["trial_number"], target["value"]
    target["value"] = kept_value + 0.25
    target["n_layers"] = target["n_layers"] * 2
    dump.write_text(json.dumps(data, indent=2))
    out = tmp_path / "out"
    run = run_cli("extract", str(tree), "--out", str(out), "--no-report")
    assert run.returncode == 0, run.stderr
    manifest = _manifest(out)
    row = manifest[dump.name]
    assert row["status"] == "warning" and row["n_merged"] == "8"
    assert (
        f"trial {number}: objective {kept_value + 0.25!r} here but {kept_value!r}" in row["reason"]
    )
    assert f"trial_{number:04d}.json (kept)" in row["reason"]
    assert "n_layers" in row["reason"]
    # one stderr line for the file, not one per trial or per field
    lines = [line for line in run.stderr.splitlines() if line.startswith(str(dump))]
    assert len(lines) == 1 and "2 value(s) disagree" in lines[0]
    rows = _by_key(read_csv(out / "hpo_summary.csv"))
    kept = rows[(dump.parent.name, str(number))]
    assert float(kept["objective"]) == kept_value  # the per-trial file's value wins
    # nothing was rejected: --strict (which fails on rejected files) passes on this tree
    strict = run_cli("extract", str(tree), "--out", str(tmp_path / "o2"), "--strict", "--no-report")
    assert strict.returncode == 0, strict.stderr


def test_a_trial_only_the_dump_holds_is_kept_from_it(runner_tree: Path, tmp_path: Path) -> None:
    tree = tmp_path / "hpo"
    shutil.copytree(runner_tree, tree)
    missing = next(tree.glob("*2M_h3*/trials/trial_0005.json"))
    missing.unlink()
    out = tmp_path / "out"
    rows = _by_key(_extract([tree], out))
    assert len(rows) == 32
    row = rows[(missing.parent.parent.name, "5")]
    assert row["source_format"] == "study dump"
    assert row["sources"].endswith("_all_trials.json") and "; " not in row["sources"]
    assert row["best_epoch"] == "" and row["d_model"] != ""
    dump = _manifest(out)[f"{missing.parent.parent.name}_all_trials.json"]
    assert dump["n_trials"] == "1" and dump["n_merged"] == "7" and dump["status"] == "ok"


def test_best_file_counts_tell_of_missing_trials(runner_tree: Path, tmp_path: Path) -> None:
    tree = tmp_path / "hpo"
    shutil.copytree(runner_tree, tree)
    study = next(tree.glob("*2M_h1*"))
    for path in sorted(study.glob("trials/trial_000[67].json")):
        path.unlink()
    dump = next(study.glob("*_all_trials.json"))
    data = json.loads(dump.read_text())
    data["trials"] = [t for t in data["trials"] if t["trial_number"] not in (6, 7)]
    dump.write_text(json.dumps(data))
    out = tmp_path / "out"
    _extract([tree], out)
    best = _manifest(out)[next(study.glob("*_best.json")).name]
    assert best["status"] == "warning"
    assert "n_trials_completed 8 but 6 COMPLETE trial(s)" in best["reason"]
    assert "2 missing" in best["reason"]


def test_two_files_of_one_form_are_still_duplicates(runner_tree: Path, tmp_path: Path) -> None:
    tree = tmp_path / "hpo"
    shutil.copytree(runner_tree, tree)
    original = next(tree.glob("*2M_h1*/trials/trial_0001.json"))
    shutil.copy(original, original.with_name("trial_0001_copy.json"))
    out = tmp_path / "out"
    rows = _extract([tree], out)
    assert len(rows) == 32
    copy = _manifest(out)["trial_0001_copy.json"]
    assert copy["status"] == "rejected" and "this copy is not used" in copy["reason"]


def _storage_of(tree: Path, db: Path) -> str:
    """An Optuna SQLite storage holding the same trials as the per-trial files."""
    optuna = pytest.importorskip("optuna")
    from datetime import datetime

    from optuna.distributions import FloatDistribution, IntDistribution
    from optuna.trial import FrozenTrial, TrialState

    url = f"sqlite:///{db}"
    for study_dir in sorted(p for p in tree.iterdir() if p.is_dir()):
        study = optuna.create_study(study_name=study_dir.name, storage=url, direction="minimize")
        for path in sorted(study_dir.glob("trials/*.json")):
            raw = json.loads(path.read_text())
            params = raw["params"]
            distributions = {
                k: IntDistribution(0, 10**6) if isinstance(v, int) else FloatDistribution(0.0, 1e6)
                for k, v in params.items()
            }
            study.add_trial(
                FrozenTrial(
                    number=raw["trial_number"],
                    state=TrialState.COMPLETE,
                    value=raw["value"],
                    values=None,
                    datetime_start=datetime.fromisoformat(raw["datetime_start"]),
                    datetime_complete=datetime.fromisoformat(raw["datetime_complete"]),
                    params=params,
                    distributions=distributions,
                    user_attrs=raw["user_attrs"],
                    system_attrs={},
                    intermediate_values={},
                    trial_id=0,
                )
            )
    return url


def test_an_optuna_storage_of_the_same_trials(runner_tree: Path, tmp_path: Path) -> None:
    db = tmp_path / "optuna.db"
    _storage_of(runner_tree, db)
    files = _extract([runner_tree], tmp_path / "files")
    storage = _extract([db], tmp_path / "storage")
    together = _extract([runner_tree, db], tmp_path / "together")
    seed = [c for c in SEED_COLUMNS if c not in LINEAGE]
    pick = lambda rows: [{c: r[c] for c in seed} for r in rows]  # noqa: E731
    assert pick(files) == pick(storage) == pick(together)
    for row in together:
        parts = row["sources"].split("; ")
        assert len(parts) == 3 and parts[0].endswith(".json") and parts[1].endswith("optuna.db")
    manifest = _manifest(tmp_path / "together")
    assert manifest["optuna.db"]["status"] == "ok"
    assert manifest["optuna.db"]["n_merged"] == "32"
    assert manifest["optuna.db"]["n_trials"] == "0"
    assert all(r["direction"] == "minimize" for r in together)


def test_auc_maximizing_trial_files_rank_the_highest_first(tmp_path: Path) -> None:
    root = tmp_path / "hpo"
    aucs = [0.61, 0.74, 0.58, 0.69]
    for number, auc in enumerate(aucs):
        points = [
            {
                "epoch": e,
                "train_loss": 0.7 - e / 100,
                "val_loss": 0.69,
                "val_auc": auc - 0.05 * (2 - e),
            }
            for e in range(3)
        ]
        write_trial(
            root,
            "auc_2M_h1",
            number,
            {
                "trial_number": number,
                "value": auc,
                "state": "COMPLETE",
                "params": {"learning_rate": 1e-3 * (number + 1)},
                "user_attrs": {"learning_curve": points},
            },
        )
    rows = _extract([root], tmp_path / "out")
    best = next(r for r in rows if r["rank_in_study"] == "1")
    assert float(best["objective"]) == max(aucs)
    assert {r["direction"] for r in rows} == {"maximize"}
    assert {r["objective_name"] for r in rows} == {"val_auc"}
    assert "in 4 of 4 trials" in rows[0]["direction_source"]


def _rmse_study(root: Path, blow_up: int | None = None) -> None:
    values = [19_500.0, 20_300.0, 21_000.0, 18_900.0, 80_000.0, 22_400.0]
    for number, value in enumerate(values):
        points = [
            {"epoch": e, "train_loss": value * (1.2 - e / 10), "val_loss": value} for e in range(3)
        ]
        if number == blow_up:
            points[2]["train_loss"] = math.inf
        write_trial(
            root,
            "rmse_20M_h1",
            number,
            json.dumps(
                {
                    "trial_number": number,
                    "value": value,
                    "state": "COMPLETE",
                    "user_attrs": {"learning_curve": points},
                }
            ),
        )


def test_objectives_around_20000_are_not_diverged(tmp_path: Path) -> None:
    _rmse_study(tmp_path / "hpo")
    out = tmp_path / "out"
    rows = _extract([tmp_path / "hpo"], out)
    assert [r["diverged"] for r in rows] == ["false"] * 6
    meta = json.loads(
        (out / "hpo_full.json").read_text().split('\n"trials"')[0][len('{"metadata": ') : -1]
    )
    rule = meta["studies"][0]["divergence_rule"]
    assert rule.startswith("scale-aware") and "10 × the median objective 20650" in rule
    # an explicit absolute threshold is still honoured
    absolute = _extract([tmp_path / "hpo"], tmp_path / "abs", diverge_threshold=10.0)
    assert {r["diverged"] for r in absolute} == {"true"}


def test_a_curve_that_blows_up_is_diverged_at_any_scale(tmp_path: Path) -> None:
    _rmse_study(tmp_path / "hpo", blow_up=3)
    rows = _by_key(_extract([tmp_path / "hpo"], tmp_path / "out"))
    assert [k for k, r in sorted(rows.items()) if r["diverged"] == "true"] == [("rmse_20M_h1", "3")]
    diverged = read_csv(tmp_path / "out" / "diverged_analysis.csv")
    assert diverged[0]["diverge_epoch"] == "2" and diverged[0]["diverge_kind"] in (
        "inf",
        "inf_loss",
    )


def test_runner_sentinel_is_diverged_even_when_most_trials_hit_it(tmp_path: Path) -> None:
    values = [100.0, 100.0, 100.0, 0.7, 0.65]
    for number, value in enumerate(values):
        write_trial(tmp_path / "hpo", "s_2B_h1", number, {"trial_number": number, "value": value})
    rows = _extract([tmp_path / "hpo"], tmp_path / "out")
    assert [r["diverged"] for r in rows] == ["true", "true", "true", "false", "false"]


def test_merge_keeps_the_first_value_and_fills_gaps() -> None:
    base = {
        "study": "s",
        "trial_num": 1,
        "objective": None,
        "objective_kind": "missing",
        "state": "UNKNOWN",
        "lr": None,
        "datetime_start": None,
        "_curve_len": 0,
    }
    log = Record(
        {**base, "objective": 0.4, "objective_kind": "finite", "state": "COMPLETE"},
        "log-loc",
        [],
        "run.log",
        "optuna_log",
        3,
    )
    storage = Record(
        {
            **base,
            "lr": 0.01,
            "datetime_start": "2025-01-01T00:00:00",
            "state": "COMPLETE",
            "objective": 0.4,
            "objective_kind": "finite",
            "_curve_len": 2,
            "best_epoch": 1,
        },
        "db-loc",
        ["intermediate_value"],
        "optuna.db",
        "optuna_storage",
        1,
    )
    trial = Record(dict(base), "file-loc", [], "s/trials/trial_1.json", "trial_json", 2)
    merged = merge_records([log, storage, trial])
    assert merged.primary is trial
    assert merged.row["objective"] == 0.4 and merged.row["state"] == "COMPLETE"
    assert merged.row["lr"] == 0.01 and merged.row["datetime_start"] == "2025-01-01T00:00:00"
    assert merged.location == "db-loc" and merged.row["best_epoch"] == 1  # the curve's record
    assert merged.row["sources"] == "s/trials/trial_1.json; optuna.db; run.log"
    assert merged.conflicts == [] and merged.duplicates == []


def test_a_second_dump_of_the_same_trials_is_one_duplicate_line(
    runner_tree: Path, tmp_path: Path
) -> None:
    tree = tmp_path / "hpo"
    shutil.copytree(runner_tree, tree)
    dump = next(tree.glob("*2M_h1*/*_all_trials.json"))
    shutil.copy(dump, dump.with_name("all_trials.json"))
    out = tmp_path / "out"
    run = run_cli("extract", str(tree), "--out", str(out), "--no-report")
    assert run.returncode == 0, run.stderr
    manifest = _manifest(out)
    first = manifest["all_trials.json"]  # first by path: merged into the per-trial records
    assert first["status"] == "ok" and first["n_merged"] == "8"
    second = manifest[dump.name]  # the same form again: a real duplicate, one message
    assert second["status"] == "warning" and second["n_trials"] == second["n_merged"] == "0"
    assert "8 trial(s) were already read from a file of the same form" in second["reason"]
    assert "and 5 more" in second["reason"]
    lines = [line for line in run.stderr.splitlines() if line.startswith(str(dump))]
    assert len(lines) == 1


def test_a_packed_record_gives_back_its_row_in_order_and_shares_what_repeats() -> None:
    rows = [
        {"study": "s", "trial_num": n, "state": "COMPLETE", "lr": 0.1 * n, "extra": None}
        for n in range(3)
    ]
    # text built at run time, as a reader's parse makes it: equal, but separate objects
    rows[1]["state"] = "".join(["COMP", "LETE"])
    records = [Record(dict(r), None, [], "f.json", "study_dump", 0) for r in rows]
    for record, row in zip(records, rows, strict=True):
        assert record.row == row and list(record.row) == list(row)
        assert record.row is not record.row  # a new dict each time: the record stays as read
    assert records[0].row["state"] is records[1].row["state"]
    records[2].release()
    assert records[2].row == {"study": "s", "trial_num": 2}


def test_a_record_key_is_its_rows_study_and_trial_number_before_and_after_release() -> None:
    row = {"study": "".join(["s", "1"]), "trial_num": 7, "state": "COMPLETE", "lr": 0.1}
    record = Record(dict(row), None, [], "f.json", "study_dump", 0)
    assert record.key == (row["study"], row["trial_num"]) == (record.row["study"], 7)
    assert record.key[0] is record.row["study"]  # the shared copy of the text
    record.release()
    assert record.key == ("s1", 7) and record.row == {"study": "s1", "trial_num": 7}
