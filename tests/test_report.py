"""report.html and the figures: self-contained, written atomically, optional, and safe.

The browser tests load the report in a real headless Chromium (Debian's ``chromium``; .ci/run
installs it): no console messages at all (the page has no script, so any message is an error
such as a blocked resource), a screenshot with rendered figures, and a study name carrying an
HTML payload that stays text. They skip only when no Chromium binary exists.
"""

from __future__ import annotations

import base64
import html
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hpo_analysis.analyze import all_findings
from hpo_analysis.derive import assign_ranks
from hpo_analysis.example import generate_example
from hpo_analysis.report import (
    FIGURE_NAMES,
    REPORT_HTML,
    ReportData,
    make_figures,
    render_html,
)
from hpo_analysis.validate import validate_dir

from .conftest import curve, run_cli, strict_json, write_trial
from .test_analyze import rows_strategy

CHROMIUM = next(
    (
        found
        for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
        if (found := shutil.which(name))
    ),
    None,
)
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="no Chromium binary on PATH")
PAYLOAD = "<img src=x onerror=console.error(7331)>"


@pytest.fixture(scope="module")
def report_dir(example_out: Path) -> Path:
    pytest.importorskip("matplotlib")
    assert (example_out / REPORT_HTML).is_file()
    return example_out


def _images(text: str) -> list[str]:
    return re.findall(r'<img src="([^"]*)"', text)


# --- structure -------------------------------------------------------------------------------


def test_report_is_self_contained(report_dir: Path) -> None:
    text = (report_dir / REPORT_HTML).read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>")
    assert "Content-Security-Policy" in text and "default-src 'none'" in text
    assert "<script" not in text.lower()
    assert not re.search(r'(src|href)="(https?:)?//', text), "external resource"
    figures = sorted(report_dir.glob("figure_*.png"))
    assert [p.name for p in figures] == sorted(FIGURE_NAMES)  # the example has data for all
    embedded = _images(text)
    assert len(embedded) == len(figures)
    files = {p.read_bytes() for p in figures}
    for source in embedded:
        assert source.startswith("data:image/png;base64,")
        png = base64.b64decode(source.split(",", 1)[1])
        assert png.startswith(b"\x89PNG\r\n\x1a\n") and png in files


def test_report_shows_every_finding_escaped(report_dir: Path) -> None:
    text = (report_dir / REPORT_HTML).read_text(encoding="utf-8")
    for finding in strict_json(report_dir / "findings.json")["findings"]:
        assert html.escape(finding["sentence"], quote=True) in text, finding["id"]
        assert html.escape(finding["title"], quote=True) in text


def test_generated_readme_shows_the_figures(report_dir: Path) -> None:
    readme = (report_dir / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Known patterns and findings", 1)[1]
    for name in FIGURE_NAMES:
        assert re.search(rf"!\[[^\]]+\]\({name}\)", section), name
    assert "`report.html`" in readme and "`findings.json`" in readme


curve_values = st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True))


@settings(max_examples=10, deadline=None)
@given(rows_strategy, st.lists(st.lists(curve_values, max_size=6), max_size=3))
def test_any_rows_draw_every_figure(rows: list[dict], curves: list[list[float | None]]) -> None:
    pytest.importorskip("matplotlib")
    assign_ranks(rows)
    diverged = [
        {
            "study": "s",
            "trial_num": i,
            "diverge_epoch": 1,
            "learning_curve": [{"epoch": e, "val_loss": v} for e, v in enumerate(values)],
            "similar_trial": None,
        }
        for i, values in enumerate(curves)
    ]
    data = ReportData(
        rows=rows,
        findings=all_findings(rows, top_k=3),
        diverged=diverged,
        meta={"settings": {"diverge_threshold": 10.0}},
    )
    figures = make_figures(data)
    assert data.figure_problems == []
    assert render_html(data, figures).startswith("<!DOCTYPE html>")


# --- the report command, --no-report and a missing matplotlib --------------------------------


@pytest.fixture
def small_tree(tmp_path: Path) -> Path:
    src = tmp_path / "hpo"
    generate_example(src, budgets=("2M",), horizons=("h1", "h3"), trials_per_study=8, n_diverged=0)
    return src


def test_report_command_on_an_extract_without_report(tmp_path: Path, small_tree: Path) -> None:
    pytest.importorskip("matplotlib")
    out = tmp_path / "out"
    assert run_cli("extract", str(small_tree), "--out", str(out), "--no-report").returncode == 0
    assert not (out / REPORT_HTML).exists() and not list(out.glob("figure_*.png"))
    first = run_cli("report", str(out))
    assert first.returncode == 0, first.stderr
    assert "wrote" in first.stdout and REPORT_HTML in first.stdout
    page = (out / REPORT_HTML).read_bytes()
    assert list(out.glob("figure_*.png"))
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]  # temp files replaced
    assert validate_dir(out) == []
    assert run_cli("report", str(out)).returncode == 0
    assert (out / REPORT_HTML).read_bytes() == page  # deterministic


def test_report_command_errors(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    not_ours = run_cli("report", str(tmp_path))
    assert not_ours.returncode == 1
    assert not_ours.stderr.count("\n") == 1 and "not an hpo-analysis output" in not_ours.stderr
    assert not (tmp_path / REPORT_HTML).exists()
    missing = run_cli("report", str(tmp_path / "nope"))
    assert missing.returncode == 2 and "no such directory" in missing.stderr


BLOCK_MATPLOTLIB = (
    "import sys; sys.modules['matplotlib'] = None; "
    "from hpo_analysis.cli import main; sys.exit(main(sys.argv[1:]))"
)


def test_without_matplotlib_extract_succeeds_and_says_so(tmp_path: Path, small_tree: Path) -> None:
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-c", BLOCK_MATPLOTLIB, "extract", str(small_tree), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("report skipped")
    assert "pip install 'hpo-analysis[report]'" in lines[0]
    assert (out / "findings.json").is_file() and not (out / REPORT_HTML).exists()
    assert "figure_" not in (out / "README.md").read_text(encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, "-c", BLOCK_MATPLOTLIB, "report", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1 and "hpo-analysis[report]" in proc.stderr
    assert proc.stderr.count("\n") == 1


# --- a real browser --------------------------------------------------------------------------


def _chromium(page: Path, profile: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    return subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile}",
            "--enable-logging=stderr",
            "--v=0",
            *extra,
            page.resolve().as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=90,
    )


def _console(stderr: str) -> list[str]:
    """Messages the page wrote to the console (Chromium logs them as INFO:CONSOLE lines)."""
    return [line for line in stderr.splitlines() if ":CONSOLE" in line]


@needs_chromium
def test_the_browser_checks_can_fail(tmp_path: Path) -> None:
    """Control: an unescaped payload and a console error are seen by the checks used below."""
    probe = tmp_path / "probe.html"
    probe.write_text(
        f'<!DOCTYPE html><html><body><p>probe</p>{PAYLOAD}<script>console.error("probe-err")'
        "</script></body></html>",
        encoding="utf-8",
    )
    run = _chromium(probe, tmp_path / "profile", "--dump-dom")
    assert '<img src="x"' in run.stdout
    messages = " ".join(_console(run.stderr))
    assert "probe-err" in messages and "7331" in messages


@needs_chromium
def test_report_renders_in_headless_chromium(report_dir: Path, tmp_path: Path) -> None:
    image = pytest.importorskip("matplotlib.image")
    page = report_dir / REPORT_HTML
    dom = _chromium(page, tmp_path / "profile", "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert _console(dom.stderr) == []
    assert len(_images(dom.stdout)) == len(FIGURE_NAMES)
    assert "<h2" in dom.stdout and "Architecture patterns" in dom.stdout
    shot = tmp_path / "shot.png"
    run = _chromium(page, tmp_path / "profile2", f"--screenshot={shot}", "--window-size=1280,2000")
    assert shot.is_file(), run.stderr[-2000:]
    assert _console(run.stderr) == []
    pixels = image.imread(str(shot))[:, :, :3]
    assert pixels.shape[:2] == (2000, 1280)
    assert float(pixels.std()) > 0.05, "blank screenshot"
    # text is grey; only drawn figures (colormaps, coloured bars and lines) give colour
    colourful = (pixels.max(axis=2) - pixels.min(axis=2)) > 0.25
    assert int(colourful.sum()) > 20_000, "the figures did not render"


@needs_chromium
def test_html_in_a_study_name_stays_text(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    src = tmp_path / "hpo"
    study = f"{PAYLOAD}_2M_h1"
    for number in range(6):
        write_trial(
            src,
            study,
            number,
            {
                "trial_number": number,
                "value": 0.5 + number / 100,
                "state": "COMPLETE",
                "params": {"learning_rate": 0.001 * (number + 1), "epochs": 10},
                "architecture": {"d_model": 64, "n_layers": 2 + number, "n_heads": 2},
                "user_attrs": {"learning_curve": curve(0.7, 0.6, 0.5 + number / 100)},
            },
        )
    out = tmp_path / "out"
    result = run_cli("extract", str(src), "--out", str(out))
    assert result.returncode == 0, result.stderr
    text = (out / REPORT_HTML).read_text(encoding="utf-8")
    assert html.escape(PAYLOAD) in text and PAYLOAD not in text
    run = _chromium(out / REPORT_HTML, tmp_path / "profile", "--dump-dom")
    assert run.returncode == 0, run.stderr[-2000:]
    assert '<img src="x"' not in run.stdout and "onerror=" not in run.stdout.replace(
        html.escape(PAYLOAD), ""
    )
    assert html.escape(PAYLOAD) in run.stdout
    assert _console(run.stderr) == []


# --- divergence figures: what the panels say -----------------------------------------------


def test_divergence_heatmap_draws_the_interaction_table() -> None:
    pytest.importorskip("matplotlib")
    from hpo_analysis.analyze import divergence_interactions
    from hpo_analysis.report import divergence_interaction_figure

    from .test_analyze import interaction_rows

    finding = divergence_interactions(interaction_rows())
    figure = divergence_interaction_figure([finding])
    assert figure is not None and figure.name == "figure_divergence_lr_depth.png"
    assert figure.png.startswith(b"\x89PNG")
    assert "4 of 6 trials" in figure.caption  # the finding's sentence, quoted
    calm = divergence_interactions([{**r, "diverged": False} for r in interaction_rows()])
    assert divergence_interaction_figure([calm]) is None


def test_diverged_panel_names_lr_warmup_and_the_similar_trial() -> None:
    from hpo_analysis.report import _panel_params

    trial = {"study": "s_2B", "lr": 0.00456, "warmup_steps": 250}
    assert _panel_params(trial, {"study": "s_2B", "trial_num": 7, "lr": 1e-4}) == (
        "lr 0.00456, warmup 250 | similar #7, lr 0.0001"
    )
    assert _panel_params(trial, {"study": "other", "trial_num": 2, "lr": 3e-4}) == (
        "lr 0.00456, warmup 250 | similar other/2, lr 0.0003"
    )
    assert _panel_params({"lr": None}, {}) == "lr ?, warmup ?"


# --- one report, whoever makes it ----------------------------------------------------------


def _report_files(directory: Path) -> dict[str, bytes]:
    return {
        p.name: p.read_bytes()
        for p in sorted(directory.iterdir())
        if p.name == REPORT_HTML or p.name.startswith("figure_")
    }


def test_extract_report_equals_the_report_command(tmp_path: Path, example_out: Path) -> None:
    """extract draws the report from memory; `hpo-analysis report` reads the files: the same
    bytes, every figure included."""
    pytest.importorskip("matplotlib")
    made_by_extract = _report_files(example_out)
    assert REPORT_HTML in made_by_extract and len(made_by_extract) == 1 + len(FIGURE_NAMES)
    copy = tmp_path / "copy"
    shutil.copytree(example_out, copy)
    for name in made_by_extract:
        (copy / name).unlink()
    result = run_cli("report", str(copy))
    assert result.returncode == 0, result.stderr
    assert _report_files(copy) == made_by_extract


def _awkward_tree(root: Path) -> Path:
    """Values whose file form differs from their form in memory: NaN and infinite numbers
    (empty cells, JSON null), an integer in a float column, text that starts with a formula
    trigger or a quote, a parameter beyond the data dictionary, an extra study-name factor."""
    for study in ("sweep_2M_h1_a1", "sweep_20M_h1_a2"):
        for number in range(8):
            losses = [0.9 - 0.05 * e - 0.01 * number for e in range(6)]
            value: float = losses[-1]
            if number == 3:
                losses[4:] = [float("inf"), float("nan")]
                value = float("nan")
            write_trial(
                root,
                study,
                number,
                {
                    "trial_number": number,
                    "value": value,
                    "state": "COMPLETE",
                    "params": {
                        "learning_rate": 1 if number == 5 else 0.001 * (number + 1),
                        "optimizer": "=adam" if number % 2 else "'+sgd",
                        "epochs": 10,
                    },
                    "architecture": {"d_model": 64 * (1 + number % 2), "n_layers": 2 + number},
                    "user_attrs": {"learning_curve": curve(*losses)},
                },
            )
    return root


def test_report_from_memory_is_the_report_from_the_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("matplotlib")
    import hpo_analysis.report as report
    from hpo_analysis import extract
    from hpo_analysis.model import Settings

    drawn: list[ReportData] = []
    original = report.write_report_files

    def capture(directory: Path, data: ReportData, *, atomic: bool) -> list[str]:
        drawn.append(data)
        return original(directory, data, atomic=atomic)

    monkeypatch.setattr(report, "write_report_files", capture)
    out = tmp_path / "out"
    settings = Settings(
        write_report=True,
        study_pattern=r"_(?P<budget>\d+[MB])_(?P<horizon>h\d+)_(?P<tier>a\d+)",
    )
    extract([_awkward_tree(tmp_path / "hpo")], out, settings, jobs=1)
    assert len(drawn) == 1
    from_memory = drawn[0]
    assert any(r["diverged"] for r in from_memory.rows)
    assert any(str(r.get("param_optimizer", "")).startswith("=") for r in from_memory.rows)
    from_files = report.load_report_data(out)
    assert from_memory.rows == from_files.rows
    assert from_memory.findings == from_files.findings
    assert from_memory.diverged == from_files.diverged
    assert from_memory == from_files
    made_by_extract = _report_files(out)
    for name in made_by_extract:
        (out / name).unlink()
    monkeypatch.setattr(report, "write_report_files", original)
    report.write_report(out)
    assert _report_files(out) == made_by_extract


def test_the_writer_imports_neither_the_report_nor_the_analysis() -> None:
    """write/ draws what the pipeline hands it; the report and the analysis come before or
    after it in the pipeline, never from inside it."""
    import ast

    import hpo_analysis.write

    for path in sorted(Path(hpo_analysis.write.__file__).parent.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""] + [alias.name for alias in node.names]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            for name in names:
                last = name.rsplit(".", 1)[-1]
                assert last not in ("report", "analyze"), f"{path.name} imports {name}"


# --- the figures' table work, held to its pandas definition -----------------------------------

texts = st.one_of(st.none(), st.sampled_from(["a", "b", "B", "é"]), st.just(float("nan")))
ranks = st.one_of(st.just(float("nan")), st.integers(1, 5).map(float))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(texts, ranks), max_size=12))
def test_quality_in_study_is_the_grouped_one(trials: list[tuple[object, float]]) -> None:
    import numpy as np
    import pandas as pd

    from hpo_analysis.report import _quality_in_study

    frame = pd.DataFrame(
        {
            "study": pd.Series([s for s, _ in trials], dtype=object),
            "rank_in_study": pd.Series([r for _, r in trials], dtype=float),
        }
    )
    ranked = frame.groupby("study")["rank_in_study"].transform("count")
    expected = 1.0 - (frame["rank_in_study"] - 1) / (ranked - 1).where(ranked > 1)
    expected = expected.where(~(frame["rank_in_study"].notna() & (ranked == 1)), 1.0)
    got = _quality_in_study(frame["study"].tolist(), frame["rank_in_study"].to_numpy(float))
    np.testing.assert_array_equal(got, expected.to_numpy(float))


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from([-1.0, -0.5, 0.0, -0.0]),
            texts,
            st.one_of(st.just(float("nan")), st.integers(0, 3).map(float)),
            texts,
            st.booleans(),
        ),
        max_size=60,
    )
)
def test_best_per_budget_is_the_sorted_grouped_head(
    trials: list[tuple[float, object, float, object, bool]],
) -> None:
    import numpy as np
    import pandas as pd

    from hpo_analysis import report
    from hpo_analysis.report import _best_per_budget

    frame = pd.DataFrame(
        {
            "_q": pd.Series([t[0] for t in trials], dtype=float),
            "study": pd.Series([t[1] for t in trials], dtype=object),
            "trial_num": pd.Series([t[2] for t in trials], dtype=float),
            "budget": pd.Series([t[3] for t in trials], dtype=object),
            "_pos": np.arange(len(trials)),
        }
    )
    candidate = np.array([t[4] for t in trials], dtype=bool)
    best_first = frame[candidate].sort_values(["_q", "study", "trial_num"], kind="mergesort")
    top = best_first.groupby("budget", dropna=False, sort=False).head(3)
    expected = np.zeros(len(trials), dtype=bool)
    expected[top["_pos"].to_numpy(int)] = True
    kept, report.PARALLEL_TOP = report.PARALLEL_TOP, 3  # small groups reach the limit
    try:
        got = _best_per_budget(
            np.flatnonzero(candidate),
            frame["_q"].to_numpy(float),
            frame["study"].tolist(),
            frame["trial_num"].tolist(),
            frame["budget"].tolist(),
        )
    finally:
        report.PARALLEL_TOP = kept
    np.testing.assert_array_equal(got, expected)
