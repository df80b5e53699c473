"""The bundled example, end to end through the command line."""

from __future__ import annotations

import filecmp
import json
import math
import shutil
import subprocess
from pathlib import Path

import pytest

from hpo_analysis.example import generate_example
from hpo_analysis.schema import SEED_COLUMNS

from .conftest import (
    EXAMPLE,
    example_inputs_before,
    read_csv,
    run_cli,
    strict_json,
    tree_digest,
)


def test_counts_match_the_example(example_out: Path) -> None:
    rows = read_csv(example_out / "hpo_summary.csv")
    assert len(rows) == 600
    assert len({r["study"] for r in rows}) == 12
    diverged = [r for r in rows if r["diverged"] == "true"]
    assert len(diverged) == 14
    assert {r["budget"] for r in diverged} == {"2B"}
    assert {r["budget"] for r in rows} == {"2M", "20M", "200M", "2B"}
    assert {r["horizon"] for r in rows} == {"h1", "h3", "h5"}


def test_seed_columns_come_first_in_order(example_out: Path) -> None:
    with open(example_out / "hpo_summary.csv", encoding="utf-8") as handle:
        header = handle.readline().strip().split(",")
    assert tuple(header[: len(SEED_COLUMNS)]) == SEED_COLUMNS


def test_full_json_is_strict_and_complete(example_out: Path) -> None:
    full = strict_json(example_out / "hpo_full.json")
    assert full["metadata"]["n_trials"] == len(full["trials"]) == 600
    assert full["metadata"]["n_studies"] == 12
    assert full["metadata"]["n_diverged"] == 14
    trial = full["trials"][0]
    for group in ("architecture", "training_params", "results", "dynamics", "flags"):
        assert isinstance(trial[group], dict)
    assert trial["learning_curve"] and "val_loss" in trial["learning_curve"][0]
    # the non-finite curve values are not lost: every diverged curve with nulls lists them
    for t in full["trials"]:
        nulls = sum(1 for p in t["learning_curve"] for k, v in p.items() if v is None)
        assert nulls == len(t["learning_curve_non_finite"]) == t["flags"]["curve_non_finite"]


@pytest.mark.skipif(shutil.which("jq") is None, reason="jq binary not installed")
def test_full_json_parses_with_jq_binary(example_out: Path) -> None:
    out = subprocess.run(
        ["jq", ".metadata.n_trials", str(example_out / "hpo_full.json")],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "600"


def test_full_json_parses_with_jq_library(example_out: Path) -> None:
    jq = pytest.importorskip("jq")
    text = (example_out / "hpo_full.json").read_text(encoding="utf-8")
    assert (
        jq.compile("[.trials[] | select(.flags.diverged)] | length").input_text(text).first() == 14
    )


@pytest.mark.skipif(shutil.which("node") is None, reason="node not installed")
def test_full_json_parses_with_javascript_json_parse(example_out: Path) -> None:
    script = (
        "const fs=require('fs');const d=JSON.parse(fs.readFileSync(process.argv[1],'utf8'));"
        "console.log(d.trials.length)"
    )
    out = subprocess.run(
        ["node", "-e", script, str(example_out / "hpo_full.json")],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "600"


def test_each_diverged_row_is_diagnosed(example_out: Path) -> None:
    rows = read_csv(example_out / "diverged_analysis.csv")
    summary = {(r["study"], r["trial_num"]): r for r in read_csv(example_out / "hpo_summary.csv")}
    assert len(rows) == 14
    for row in rows:
        assert row["diverge_kind"] in ("nan_loss", "inf_loss", "above_threshold", "value_only")
        if row["diverge_kind"] != "value_only":
            assert row["diverge_epoch"] != ""
        assert row["arch_category"] in ("narrow-deep", "balanced", "wide-shallow")
        study, _, num = row["similar_successful_trial"].rpartition("/")
        similar = summary[(study, num)]
        assert similar["diverged"] == "false" and similar["budget"] == row["budget"]
        assert float(row["similar_val_loss"]) == float(similar["val_loss"])
    doc = strict_json(example_out / "diverged_analysis.json")
    for trial in doc["trials"]:
        assert trial["learning_curve"] and trial["similar_trial"]["learning_curve"]


def test_diverge_epoch_matches_the_raw_curve(example_out: Path) -> None:
    """Recompute the first bad epoch straight from the input files."""
    for row in read_csv(example_out / "diverged_analysis.csv"):
        raw = json.loads(
            (
                Path(row["source_file"])
                if Path(row["source_file"]).is_absolute()
                else EXAMPLE.parents[1] / row["source_file"]
            ).read_text()
        )
        bad = [
            p["epoch"]
            for p in raw["user_attrs"]["learning_curve"]
            if any(not math.isfinite(p[k]) or p[k] >= 10.0 for k in ("train_loss", "val_loss"))
        ]
        expected = str(bad[0]) if bad else ""
        assert row["diverge_epoch"] == expected


def test_validate_command_checks_expectations(example_out: Path) -> None:
    ok = run_cli(
        "validate",
        str(example_out),
        "--expect-trials",
        "600",
        "--expect-studies",
        "12",
        "--expect-diverged",
        "14",
    )
    assert ok.returncode == 0, ok.stderr
    wrong = run_cli("validate", str(example_out), "--expect-diverged", "13")
    assert wrong.returncode == 1
    assert "expected 13 diverged trials, found 14" in wrong.stderr


def test_generator_reproduces_the_committed_example(tmp_path: Path) -> None:
    generate_example(tmp_path)
    compared = filecmp.dircmp(tmp_path, EXAMPLE)
    assert sorted(compared.left_list) == sorted(compared.right_list)
    for path in sorted(tmp_path.rglob("*.json")):
        assert path.read_bytes() == (EXAMPLE / path.relative_to(tmp_path)).read_bytes(), path


def test_same_input_same_output_and_inputs_untouched(tmp_path: Path, example_out: Path) -> None:
    """The shared extraction (a fresh run, through ``python -m hpo_analysis``) computed again
    in a copy of its output gives the same bytes, then is kept; no run touched the inputs."""
    out = tmp_path / "analysis"
    shutil.copytree(example_out, out, symlinks=True)
    first = tree_digest(out)
    # computed again (the record of the run would keep the set as it is), then kept
    (out / ".cache" / "run.json").unlink()
    for _ in range(2):
        assert run_cli("extract", str(EXAMPLE), "--out", out.name, cwd=tmp_path).returncode == 0
        assert tree_digest(out) == first
    assert tree_digest(EXAMPLE) == example_inputs_before(example_out)
