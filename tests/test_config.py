"""hpo-analysis.toml: field mappings, settings and expectations; the command line wins."""

from __future__ import annotations

from pathlib import Path

from .conftest import curve, read_csv, run_cli, write_trial

CONFIG = """
[extract]
sources = ["runs"]
out = "analysis"
diverge_threshold = 5.0
direction = "minimize"
study_pattern = '(?P<budget>\\d+[MB])-(?P<horizon>h\\d+)-(?P<tier>a\\d+)'

[fields]
lr = ["base_lr"]
d_model = "emb_dim"

[validate]
expect_trials = 2
expect_diverged = 1
"""


def _tree(root: Path) -> None:
    for number, value in ((0, 0.4), (1, 6.0)):
        write_trial(
            root / "runs",
            "exp-20M-h3-a100",
            number,
            {
                "trial_number": number,
                "value": value,
                "params": {"base_lr": 0.01, "epochs": 2},
                "architecture": {"emb_dim": 128, "n_layers": 2, "n_heads": 4},
                "user_attrs": {"learning_curve": curve(0.7, 0.6)},
            },
        )


def test_config_file_in_the_working_directory(tmp_path: Path) -> None:
    _tree(tmp_path)
    (tmp_path / "hpo-analysis.toml").write_text(CONFIG)
    run = run_cli("extract", "--no-report", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    rows = read_csv(tmp_path / "analysis" / "hpo_summary.csv")
    assert [r["lr"] for r in rows] == ["0.01", "0.01"]
    assert [r["d_model"] for r in rows] == ["128", "128"]
    assert "param_base_lr" not in rows[0]
    assert [r["diverged"] for r in rows] == ["false", "true"]  # threshold 5 from the file
    assert (rows[0]["budget"], rows[0]["horizon"], rows[0]["tier"]) == ("20M", "h3", "a100")
    assert run_cli("validate", "analysis", cwd=tmp_path).returncode == 0
    wrong = run_cli("validate", "analysis", "--expect-trials", "3", cwd=tmp_path)
    assert wrong.returncode == 1 and "expected 3 trials, found 2" in wrong.stderr


def test_command_line_wins_over_the_file(tmp_path: Path) -> None:
    _tree(tmp_path)
    (tmp_path / "hpo-analysis.toml").write_text(CONFIG)
    run = run_cli(
        "extract", "--no-report", "--diverge-threshold", "10", "--out", "other", cwd=tmp_path
    )
    assert run.returncode == 0, run.stderr
    rows = read_csv(tmp_path / "other" / "hpo_summary.csv")
    assert [r["diverged"] for r in rows] == ["false", "false"]


def test_bad_config_is_a_usage_error(tmp_path: Path) -> None:
    _tree(tmp_path)
    cases = {
        "[extract]\nthreshold = 3\n": "[extract] unknown key 'threshold'",
        "[fields]\nwidth = ['w']\n": "[fields] 'width' is not a standard column",
        "[extract]\ntop_k = 'many'\n": "[extract] top_k has the wrong type",
        "[extract\n": "invalid TOML",
        "[extract]\ndirection = 'up'\n": "must be minimize or maximize",
    }
    for text, message in cases.items():
        (tmp_path / "bad.toml").write_text(text)
        run = run_cli("extract", "runs", "--config", "bad.toml", cwd=tmp_path)
        assert run.returncode == 2, text
        assert "bad.toml" in run.stderr and message in run.stderr, run.stderr
        assert "Traceback" not in run.stderr
    missing = run_cli("extract", "runs", "--config", "nope.toml", cwd=tmp_path)
    assert missing.returncode == 2 and "nope.toml: no such config file" in missing.stderr


def test_extract_options_layer_command_line_over_file_over_settings() -> None:
    """Each option comes from the command line, else the file, else Settings' default."""
    from hpo_analysis.config import DEFAULT_OUT, DEFAULT_SOURCES, extract_options, parse_config
    from hpo_analysis.model import Settings

    cfg = parse_config(
        {
            "extract": {
                "sources": ["runs"],
                "top_k": 5,
                "max_file_size_mib": 2,
                "rank_by": 1,
                "study": ["a*"],
                "direction": {"b*": "maximize"},
            },
            "fields": {"lr": ["base_lr"]},
        },
        "x.toml",
    )
    bare = extract_options({}, parse_config({}, "y.toml"))
    assert bare.sources == DEFAULT_SOURCES and bare.out == DEFAULT_OUT
    assert bare.settings == Settings()
    from_file = extract_options({}, cfg)
    assert from_file.sources == ("runs",)
    assert from_file.settings.top_k == 5
    assert from_file.settings.max_file_bytes == 2 * 2**20
    assert from_file.settings.rank_by == "1"
    assert from_file.settings.studies == ("a*",)
    assert from_file.settings.field_aliases == (("lr", ("base_lr",)),)
    typed = extract_options({"sources": ["x"], "top_k": 3, "directions": [("b1", "minimize")]}, cfg)
    assert typed.sources == ("x",) and typed.settings.top_k == 3
    # the command line's direction rules come after the file's, so they win where both match
    assert typed.settings.direction_for("b1") == "minimize"
    assert typed.settings.direction_for("b2") == "maximize"
    # an option the user did not type leaves the file's value in place
    assert typed.settings.max_file_bytes == 2 * 2**20
