"""The READMEs' promises: generated examples run, quick start matches CI, commands documented."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from hpo_analysis.cli import build_parser
from hpo_analysis.schema import COLUMNS

from .conftest import REPO


def _blocks(markdown: str, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", markdown, flags=re.S)


def test_generated_readme_documents_every_column(example_out: Path) -> None:
    text = (example_out / "README.md").read_text(encoding="utf-8")
    for column in COLUMNS:
        assert f"| `{column.name}` |" in text, column.name


def test_every_metadata_key_is_documented(example_out: Path) -> None:
    """Each key extract writes into hpo_full.json's metadata (and each study entry) has a
    description in the JSON Schema, and the README lists it."""
    from hpo_analysis.schema_json import metadata_schema, study_entry_schema

    metadata = json.loads((example_out / "hpo_full.json").read_text(encoding="utf-8"))["metadata"]
    text = (example_out / "README.md").read_text(encoding="utf-8")
    for schema, entries, prefix in (
        (metadata_schema(), [metadata], "metadata."),
        (study_entry_schema(), metadata["studies"], "metadata.studies[]."),
    ):
        written = {key for entry in entries for key in entry}
        described = {k for k, v in schema["properties"].items() if v.get("description")}
        assert written <= described, sorted(written - described)
        for key in written:
            assert f"`{prefix}{key}`" in text, key


def test_generated_readme_python_examples_run(example_out: Path) -> None:
    pytest.importorskip("pandas")
    text = (example_out / "README.md").read_text(encoding="utf-8")
    blocks = _blocks(text, "python")
    assert blocks
    for block in blocks:
        proc = subprocess.run(
            [sys.executable, "-c", block],
            cwd=example_out,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.strip()


def test_generated_readme_pandas_reads_text_as_text(example_out: Path) -> None:
    """The README's own read_csv keeps words such as nan_loss and empty text columns as text."""
    pytest.importorskip("pandas")
    text = (example_out / "README.md").read_text(encoding="utf-8")
    block = next(b for b in _blocks(text, "python") if "read_csv" in b)
    check = (
        "\nassert diverged['diverge_kind'].notna().all(), diverged['diverge_kind']"
        "\nassert set(diverged['diverge_kind']) <= {'nan_loss', 'inf_loss', 'above_threshold', "
        "'value_only'}"
        "\nassert str(trials['tags'].dtype) in ('string', 'str'), trials['tags'].dtype"
        "\ntrials.loc[0, 'tags'] = 'x'; trials.loc[0, 'note'] = 'y'"
        "\nassert trials['objective'].dtype == 'float64'"
    )
    proc = subprocess.run(
        [sys.executable, "-c", block + check],
        cwd=example_out,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr


def test_generated_readme_jq_examples_run(example_out: Path) -> None:
    jq = pytest.importorskip("jq")
    text = (example_out / "README.md").read_text(encoding="utf-8")
    lines = [line for block in _blocks(text, "sh") for line in block.splitlines() if line]
    assert lines
    for line in lines:
        argv = shlex.split(line)
        assert argv[0] == "jq"
        program, path = argv[-2], argv[-1]
        results = (
            jq.compile(program).input_text((example_out / path).read_text(encoding="utf-8")).all()
        )
        assert results and results[0] not in (None, []), line


def test_findings_in_generated_readme_follow_the_data(example_out: Path) -> None:
    text = (example_out / "README.md").read_text(encoding="utf-8")
    assert "14 of 600 trials diverged (2.3%); by budget: 2B (14 of 150)." in text
    assert "## Known patterns and findings" in text


def test_quick_start_commands_are_what_ci_runs() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    quick = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    commands = [b.strip() for b in _blocks(quick, "sh")]
    assert len(commands) == 2
    assert "pytest" in commands[1]
    for command in commands:
        assert command in ci.splitlines(), command


def test_every_command_is_documented() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    for name, command_parser in sub.choices.items():  # type: ignore[union-attr]
        assert f"hpo-analysis {name}" in readme, name
        for action in command_parser._actions:
            for flag in action.option_strings:
                if flag.startswith("--") and flag != "--help":
                    assert flag in readme, f"{name} {flag}"


@pytest.mark.parametrize("n_rows", [0, 1, 100, 101, 2500])
def test_readme_shows_at_most_a_hundred_rows_of_a_finding(n_rows: int) -> None:
    """A finding's table in the README stops at README_MAX_ROWS rows and says where the
    rest are; findings.json keeps every row."""
    from hpo_analysis.finding import Finding
    from hpo_analysis.write.readme import README_MAX_ROWS, findings_section

    rows = [[f"t{i}", i] for i in range(n_rows)]
    text = findings_section(
        [Finding("big", "Big", ["study", "x"], rows, "S.", n_rows, "", "Overview")]
    )
    shown = [line for line in text.splitlines() if line.startswith("| t")]
    assert shown == [f"| t{i} | {i} |" for i in range(min(n_rows, README_MAX_ROWS))]
    cut = f"The first {README_MAX_ROWS:,} of {n_rows:,} rows; every row is in `findings.json`"
    assert (cut in text) is (n_rows > README_MAX_ROWS)
