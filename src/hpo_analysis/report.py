"""``report.html``: the findings and the key figures in one self-contained page.

``extract`` makes the report from what the run holds in memory (its rows, findings and the
diverged trials' curves: :func:`report_data_from_run`); ``hpo-analysis report DIR`` makes it
from an extracted directory through :class:`hpo_analysis.api.Dataset` (``hpo_summary.csv``,
``findings.json``, ``diverged_analysis.json``: :func:`load_report_data`). Both give the same
:class:`ReportData`, hence the same bytes. It draws the figures with matplotlib (the ``report``
extra) and embeds
them as base64 PNG, so the page opens offline and loads nothing: a Content-Security-Policy
forbids scripts and every external resource, and all text that came from input files (study
names, parameter values) is HTML-escaped. The same PNGs are written beside the data as
``figure_*.png`` for the dataset README.

It draws the :class:`~hpo_analysis.analyze.Finding` objects of ``findings.json`` (the tables
and sentences the README shows) plus :func:`~hpo_analysis.analyze.architecture_grid` and the
per-trial rows for the views that need every trial.

Example::

    >>> from hpo_analysis.report import write_report  # doctest: +SKIP
    >>> write_report("outputs/analysis")  # doctest: +SKIP
    ['figure_best_objective_heatmap.png', ...]
"""

from __future__ import annotations

import base64
import html
import io
import math
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .analyze import (
    INSUFFICIENT,
    MIN_GROUP,
    SECTIONS,
    THRESHOLDS_TEXT,
    Finding,
    architecture_grid,
    budget_sort_key,
    fmt,
    horizon_sort_key,
    trial_frame,
)
from .analyze.frame import _equals, _missing
from .api import Dataset, DatasetError, summary_value
from .api import read_summary as read_summary  # re-exported: hpo_summary.csv as typed rows
from .errors import HpoAnalysisError, install_hint
from .fulljson import loads_strict
from .jsonio import dumps_strict
from .layout import FINDINGS_JSON
from .model import Settings
from .schema import BY_NAME, MANIFEST_COLUMNS
from .write.atomic import fsync_dir, write_file_atomic

if TYPE_CHECKING:
    from matplotlib.figure import Figure as MplFigure

REPORT_HTML = "report.html"
INSTALL_HINT = install_hint("report")
DPI = 100
MAX_CURVE_PANELS = 24
MAX_DRAWABLE = 1e300  # larger magnitudes overflow the axis arithmetic; shown as off scale
LONG_TABLE = 15  # tables with more rows start folded (<details>), which needs no script
PARALLEL_AXES: tuple[str, ...] = (
    "d_model",
    "n_layers",
    "n_heads",
    "d_ff",
    "lr",
    "weight_decay",
    "warmup_steps",
    "dropout",
    "batch_size",
)
# Written beside the data files (the output directory stays flat, like every other output).
FIGURE_NAMES: tuple[str, ...] = (
    "figure_best_objective_heatmap.png",
    "figure_architecture_map.png",
    "figure_diverged_curves.png",
    "figure_training_dynamics.png",
    "figure_param_importance.png",
    "figure_parallel_coordinates.png",
    "figure_divergence_lr_depth.png",
)
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"


class ReportError(HpoAnalysisError):
    """The report cannot be made; the message names the file and the problem in one line."""


def report_available() -> bool:
    """True when matplotlib (the ``report`` extra) can be imported (the report imports it)."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


@dataclass
class ReportData:
    """What the report draws, read back from an output directory."""

    rows: list[dict[str, Any]]
    findings: list[Finding]
    diverged: list[dict[str, Any]]
    meta: dict[str, Any]
    top_k: int | None = None
    thresholds_text: str = THRESHOLDS_TEXT
    figure_problems: list[str] = field(default_factory=list)


@dataclass
class Figure:
    """One rendered figure: file name, title, caption and the PNG bytes."""

    name: str
    title: str
    caption: str
    png: bytes = field(repr=False)


# --------------------------------------------------------------------------------------------
# What the report draws: from an output directory, or from the run that is writing one
# --------------------------------------------------------------------------------------------


def load_report_data(directory: str | os.PathLike[str]) -> ReportData:
    """Read what the report needs from an output directory written by ``extract``."""
    root = Path(directory)
    manifest = root / "manifest.csv"
    try:
        with open(manifest, encoding="utf-8") as handle:
            ours = handle.readline().strip() == ",".join(MANIFEST_COLUMNS)
    except OSError:
        ours = False
    if not ours:
        raise ReportError(f"{root}: not an hpo-analysis output directory (no manifest.csv)")
    try:
        dataset = Dataset(root)
        document = dataset.findings_document()
        if document is None:
            raise ReportError(
                f"{root / FINDINGS_JSON}: missing; run hpo-analysis extract again to write it"
            )
        findings = dataset.findings()
        diverged_doc = dataset.diverged_document()
        rows = dataset.summary_rows()
    except DatasetError as err:
        raise ReportError(str(err)) from None
    return _report_data(
        rows, findings, list(diverged_doc.get("trials", [])), diverged_doc, document
    )


def report_data_from_run(
    rows: Sequence[dict[str, Any]],
    findings: Sequence[Finding],
    diverged: Iterable[dict[str, Any]],
    meta: dict[str, Any],
    settings: Settings,
) -> ReportData:
    """What the report draws, from the run that is writing the dataset (nothing is read back).

    ``rows`` are the run's rows, ``diverged`` the trials of diverged_analysis.json
    (:func:`hpo_analysis.write.outputs.diverged_objects`). The values are taken as the files
    hold them (rows typed as hpo_summary.csv holds them, findings and diverged trials as
    strict JSON: a number that is not finite is null), so this report is byte for byte the one
    ``hpo-analysis report`` makes from the files later.
    """
    from .write import findings as findings_json
    from .write.outputs import diverged_metadata, summary_header

    columns = [
        (name, BY_NAME[name].type if name in BY_NAME else "str") for name in summary_header(rows)
    ]
    typed = [{name: summary_value(row.get(name), kind) for name, kind in columns} for row in rows]
    document = _as_strict_json(findings_json.document(findings, meta, settings))
    strict_findings = [Finding.from_dict(item) for item in document["findings"]]
    return _report_data(
        typed,
        strict_findings,
        _as_strict_json(list(diverged)),
        {"metadata": _as_strict_json(diverged_metadata(meta))},
        document,
    )


def _as_strict_json(value: Any) -> Any:
    """``value`` as it reads back from the strict JSON extract writes (NaN/±inf as None)."""
    return loads_strict(dumps_strict(value).encode("utf-8"))


def _report_data(
    rows: list[dict[str, Any]],
    findings: list[Finding],
    diverged: list[dict[str, Any]],
    diverged_doc: dict[str, Any],
    findings_doc: dict[str, Any],
) -> ReportData:
    """The report's data from the summary rows, findings and diverged trials; each diverged
    trial's diagnosis (diverge epoch and kind) is added to its row."""
    by_key = {(r["study"], r["trial_num"]): r for r in rows}
    for trial in diverged:
        row = by_key.get((trial.get("study"), trial.get("trial_num")))
        if row is not None:
            row["diverge_epoch"] = trial.get("diverge_epoch")
            row["diverge_kind"] = trial.get("diverge_kind")
    meta = dict(diverged_doc.get("metadata", {}))
    meta["n_studies"] = len({r["study"] for r in rows})
    return ReportData(
        rows=rows,
        findings=findings,
        diverged=diverged,
        meta=meta,
        top_k=findings_doc.get("top_k"),
        thresholds_text=str(findings_doc.get("thresholds_text", THRESHOLDS_TEXT)),
    )


# --------------------------------------------------------------------------------------------
# Figures (matplotlib's object API: no pyplot state, no GUI backend)
# --------------------------------------------------------------------------------------------

_RC: dict[Any, Any] = {
    "font.family": "DejaVu Sans",
    "font.size": 9,
    "axes.titlesize": 9,
    "svg.hashsalt": "hpo-analysis",
    "image.cmap": "viridis",
}


def _figure(
    width: float,
    height: float,
    *,
    left: float = 0.7,
    right: float = 0.2,
    bottom: float = 0.55,
    top: float = 0.35,
    wspace: float = 0.3,
    hspace: float = 0.4,
) -> MplFigure:
    """A figure with fixed margins in inches (no layout engine: it re-measures every text
    many times and dominated the drawing time)."""
    from matplotlib.figure import Figure as MplFigure

    figure = MplFigure(figsize=(width, height), dpi=DPI)
    figure.subplots_adjust(
        left=left / width,
        right=1 - right / width,
        bottom=bottom / height,
        top=1 - top / height,
        wspace=wspace,
        hspace=hspace,
    )
    return figure


def _png(figure: MplFigure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return buffer.getvalue()


def _find(findings: Sequence[Finding], id_: str) -> Finding | None:
    return next((f for f in findings if f.id == id_), None)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _cmap_for(directions: set[str]) -> str:
    """Brighter = better in either direction; None of one direction → plain viridis."""
    return "viridis" if directions == {"maximize"} else "viridis_r"


def _text_color(rgba: Sequence[float]) -> str:
    luminance = 0.299 * rgba[0] + 0.587 * rgba[1] + 0.114 * rgba[2]
    return "black" if luminance > 0.5 else "white"


def _annotated_grid(
    ax: Any,
    values: list[list[float]],
    texts: list[list[str]],
    cmap_name: str,
) -> Any:
    import numpy as np
    from matplotlib import colormaps
    from matplotlib.colors import Normalize

    grid = np.ma.masked_invalid(np.array(values, dtype=float))
    cmap = colormaps[cmap_name].with_extremes(bad="#e6e6e6")
    finite = grid.compressed()
    norm = Normalize(float(finite.min()), float(finite.max())) if finite.size else Normalize(0, 1)
    image = ax.imshow(grid, cmap=cmap, norm=norm, aspect="auto", interpolation="nearest")
    for i, row in enumerate(texts):
        for j, text in enumerate(row):
            if not text:
                continue
            value = values[i][j]
            color = _text_color(cmap(norm(value))) if math.isfinite(value) else "#444444"
            ax.text(j, i, text, ha="center", va="center", fontsize=7, color=color)
    return image


def heatmap_figure(findings: Sequence[Finding]) -> Figure | None:
    """Budget × horizon map of the best objective (the easiest_horizon finding's table)."""
    finding = _find(findings, "easiest_horizon")
    if finding is None:
        return None
    col = {name: i for i, name in enumerate(finding.columns)}
    cells = [r for r in finding.rows if r[col["horizon"]] is not None]
    if not cells:
        return None
    budgets: list[str] = []
    for r in cells:
        if r[col["budget"]] not in budgets:
            budgets.append(r[col["budget"]])
    horizons = sorted({r[col["horizon"]] for r in cells}, key=horizon_sort_key)
    values = [[math.nan] * len(horizons) for _ in budgets]
    texts = [[""] * len(horizons) for _ in budgets]
    directions = set()
    for r in cells:
        i, j = budgets.index(r[col["budget"]]), horizons.index(r[col["horizon"]])
        best = r[col["best_objective"]]
        if _is_number(best):
            values[i][j] = float(best)
            texts[i][j] = f"{best:.4g}\nn={r[col['n']]}"
            directions.add(r[col["direction"]])
        else:
            texts[i][j] = f"{best}\nn={r[col['n']]}"
    fig = _figure(
        2.2 + 1.3 * len(horizons), 1.0 + 0.55 * len(budgets), left=1.35, right=0.2, top=0.15
    )
    ax = fig.add_subplot()
    image = _annotated_grid(ax, values, texts, _cmap_for(directions))
    ax.set_xticks(range(len(horizons)), labels=horizons)
    ax.set_yticks(range(len(budgets)), labels=budgets)
    ax.set_xlabel("horizon")
    ax.set_ylabel("budget")
    fig.colorbar(image, ax=ax, label="best objective (brighter = better)")
    caption = (
        "Best objective of the scored trials per budget and horizon (n = scored trials per "
        f"cell; grey = {INSUFFICIENT}). {finding.sentence}"
    )
    return Figure(FIGURE_NAMES[0], "Best objective by budget and horizon", caption, _png(fig))


def architecture_figure(rows: Sequence[dict[str, Any]]) -> Figure | None:
    """Per budget: d_model × n_layers map of the best objective."""
    grid = architecture_grid(rows)
    if not grid.rows:
        return None
    budgets: list[str] = []
    for r in grid.rows:
        if r[0] not in budgets:
            budgets.append(r[0])
    ncols = min(2, len(budgets))
    nrows = math.ceil(len(budgets) / ncols)
    fig = _figure(6.2 * ncols, 4.4 * nrows, left=0.6, right=0.1, bottom=0.75, top=0.3, hspace=0.5)
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for index, budget in enumerate(budgets):
        ax = axes[index // ncols][index % ncols]
        cells = [r for r in grid.rows if r[0] == budget]
        widths = sorted({r[1] for r in cells})
        depths = sorted({r[2] for r in cells})
        values = [[math.nan] * len(widths) for _ in depths]
        texts = [[""] * len(widths) for _ in depths]
        directions = set()
        for _, d_model, n_layers, n, direction, best in cells:
            i, j = depths.index(n_layers), widths.index(d_model)
            if _is_number(best):
                values[i][j] = float(best)
                texts[i][j] = f"{best:.3g}\nn={n}"
                directions.add(direction)
            else:
                texts[i][j] = f"n={n}"
        image = _annotated_grid(ax, values, texts, _cmap_for(directions))
        ax.set_xticks(range(len(widths)), labels=[str(w) for w in widths], rotation=45)
        ax.set_yticks(range(len(depths)), labels=[str(d) for d in depths])
        ax.invert_yaxis()
        ax.set_xlabel("d_model")
        ax.set_ylabel("n_layers")
        ax.set_title(f"budget {budget}")
        fig.colorbar(image, ax=ax, shrink=0.8)
    for index in range(len(budgets), nrows * ncols):
        axes[index // ncols][index % ncols].set_visible(False)
    caption = (
        "Best objective per d_model and n_layers within each budget (brighter = better; grey "
        f"cells have fewer than 3 scored trials, n shown). {grid.sentence}"
    )
    return Figure(FIGURE_NAMES[1], "Architecture map per budget", caption, _png(fig))


def divergence_interaction_figure(findings: Sequence[Finding]) -> Figure | None:
    """Per budget with a diverged trial: divergence rate by lr band × n_layers band.

    Drawn from the divergence_interactions finding's table, so the counts in the cells are
    the ones the README quotes.
    """
    finding = _find(findings, "divergence_interactions")
    if finding is None:
        return None
    col = {name: i for i, name in enumerate(finding.columns)}
    cells = [
        r
        for r in finding.rows
        if r[col["difference_points"]] is None and r[col["lr_band"]] != "confounded"
    ]
    budgets: list[str] = []
    for r in cells:
        if r[col["diverged"]] and r[col["budget"]] not in budgets:
            budgets.append(r[col["budget"]])
    if not budgets:
        return None
    ncols = min(2, len(budgets))
    nrows = math.ceil(len(budgets) / ncols)
    fig = _figure(4.6 * ncols, 2.9 * nrows, left=0.9, right=0.2, bottom=0.6, top=0.35, wspace=0.5)
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for index, budget in enumerate(budgets):
        ax = axes[index // ncols][index % ncols]
        mine = [r for r in cells if r[col["budget"]] == budget]
        lrs = list(dict.fromkeys(r[col["lr_band"]] for r in mine))
        depths = sorted(
            {r[col["n_layers_band"]] for r in mine}, key=lambda d: int(str(d).split("-")[0])
        )
        values = [[math.nan] * len(lrs) for _ in depths]
        texts = [[""] * len(lrs) for _ in depths]
        for r in mine:
            i, j = depths.index(r[col["n_layers_band"]]), lrs.index(r[col["lr_band"]])
            trials, diverged = r[col["trials"]], r[col["diverged"]]
            texts[i][j] = f"{diverged}/{trials}"
            if r[col["diverged_rate"]] != INSUFFICIENT:
                values[i][j] = 100.0 * diverged / trials
        image = _annotated_grid(ax, values, texts, "Reds")
        ax.set_xticks(range(len(lrs)), labels=lrs, fontsize=7)
        ax.set_yticks(range(len(depths)), labels=depths, fontsize=7)
        ax.set_xlabel("lr band", fontsize=8)
        ax.set_ylabel("n_layers band", fontsize=8)
        ax.set_title(f"budget {budget}", fontsize=8)
        fig.colorbar(image, ax=ax, label="diverged %")
    for index in range(len(budgets), nrows * ncols):
        axes[index // ncols][index % ncols].set_visible(False)
    caption = (
        "Diverged / trials per learning-rate decade and depth band, for each budget with a "
        f"diverged trial (grey = fewer than {MIN_GROUP} trials). {finding.sentence}"
    )
    return Figure(FIGURE_NAMES[6], "Divergence by lr × depth per budget", caption, _png(fig))


def _curve_values(curve: Sequence[dict[str, Any]], key: str) -> tuple[list[int], list[float]]:
    epochs: list[int] = []
    values: list[float] = []
    for point in curve or []:
        epoch = point.get("epoch")
        epochs.append(epoch if isinstance(epoch, int) else len(epochs))
        value = point.get(key)
        values.append(float(value) if _is_number(value) else math.nan)  # type: ignore[arg-type]
    return epochs, values


def _drawable(value: float, limit: float) -> bool:
    """Finite, below the divergence threshold and of a magnitude an axis can show."""
    return math.isfinite(value) and value < limit and abs(value) < MAX_DRAWABLE


def _panel_params(trial: dict[str, Any], similar: dict[str, Any]) -> str:
    """lr and warmup of a diverged trial, and which similar trial is drawn with which lr.

    The similar trial is named by its number when it is in the same study.

    >>> _panel_params({"study": "s", "lr": 0.005, "warmup_steps": 1000},
    ...               {"study": "s", "trial_num": 3, "lr": 0.0002})
    'lr 0.005, warmup 1000 | similar #3, lr 0.0002'
    """

    def show(value: Any) -> str:
        if not _is_number(value):
            return "?"
        return str(int(value)) if float(value).is_integer() else f"{value:.3g}"

    text = f"lr {show(trial.get('lr'))}, warmup {show(trial.get('warmup_steps'))}"
    if similar.get("study") is not None:
        name = f"#{similar.get('trial_num', '')}"
        if similar["study"] != trial.get("study"):
            study = str(similar["study"])
            name = (study if len(study) <= 16 else "…" + study[-15:]) + "/" + name[1:]
        text += f" | similar {name}, lr {show(similar.get('lr'))}"
    return text


def diverged_curves_figure(
    diverged: Sequence[dict[str, Any]], threshold: float | None = None
) -> Figure | None:
    """Each diverged trial's val_loss next to its most similar successful trial's.

    The y axis shows the finite values below the divergence ``threshold``; values that are
    non-finite or at/above it are marked × along the top edge ("off scale"), so one blown-up
    epoch does not flatten the rest of the curve.
    """
    if not diverged:
        return None
    limit = threshold if threshold is not None and threshold > 0 else math.inf
    shown = list(diverged[:MAX_CURVE_PANELS])
    ncols = min(4, len(shown))
    nrows = math.ceil(len(shown) / ncols)
    fig = _figure(
        3.2 * ncols,
        2.4 * nrows,
        left=0.55,
        right=0.1,
        bottom=0.45,
        top=0.3,
        hspace=0.8,
        wspace=0.28,
    )
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for index, trial in enumerate(shown):
        ax = axes[index // ncols][index % ncols]
        epochs, values = _curve_values(trial.get("learning_curve", []), "val_loss")
        on_scale = [v if _drawable(v, limit) else math.nan for v in values]
        ax.plot(epochs, on_scale, color="#c0392b", lw=1.4, label="diverged")
        similar = trial.get("similar_trial") or {}
        s_values: list[float] = []
        if similar.get("learning_curve"):
            s_epochs, s_values = _curve_values(similar["learning_curve"], "val_loss")
            s_on = [v if _drawable(v, limit) else math.nan for v in s_values]
            ax.plot(s_epochs, s_on, color="#2c7fb8", lw=1.2, label="similar successful")
        off = [e for e, v in zip(epochs, values, strict=True) if not _drawable(v, limit)]
        if off:
            ax.plot(
                off,
                [0.96] * len(off),
                "x",
                color="#c0392b",
                transform=ax.get_xaxis_transform(),
                label="off scale / non-finite",
            )
        finite = [v for v in on_scale + s_values if _drawable(v, limit)]
        if finite:
            low, high = min(finite), max(finite)
            pad = (high - low) * 0.12 or abs(high) * 0.05 or 0.05
            ax.set_ylim(low - pad * 0.3, high + pad)
        if _is_number(trial.get("diverge_epoch")):
            ax.axvline(trial["diverge_epoch"], color="#888888", ls="--", lw=0.8)
        if trial.get("diverge_kind") == "value_only":
            ax.text(
                0.98,
                0.9,
                "value_only: the curve never crosses",
                transform=ax.transAxes,
                ha="right",
                fontsize=6,
                color="#c0392b",
            )
        label = f"{trial.get('study', '')}/{trial.get('trial_num', '')}"
        label = label if len(label) <= 42 else "…" + label[-41:]
        ax.set_title(f"{label}\n{_panel_params(trial, similar)}", fontsize=6)
        ax.set_xlabel("epoch", fontsize=7, labelpad=1)
        ax.tick_params(labelsize=6)
        if index == 0:
            ax.set_ylabel("val_loss", fontsize=7)
            ax.legend(fontsize=6, loc="lower left")
    for index in range(len(shown), nrows * ncols):
        axes[index // ncols][index % ncols].set_visible(False)
    more = (
        f" The first {len(shown)} of {len(diverged)} diverged trials are shown."
        if len(diverged) > len(shown)
        else ""
    )
    caption = (
        "val_loss of each diverged trial (red; × along the top = non-finite or at least the "
        "divergence threshold, dashed line = diverge_epoch; `value_only` = only the objective "
        "diverged, the curve never crosses) and of its most similar successful "
        f"trial of the same budget (blue), from diverged_analysis.json.{more}"
    )
    return Figure(
        FIGURE_NAMES[2], "Diverged trials and their similar successful trials", caption, _png(fig)
    )


def _quality_in_study(study: Sequence[Any], rank: Any) -> Any:
    """``1 − (rank − 1) / (ranked − 1)`` per trial, ``ranked`` the trials of its study with a
    rank: 1 = the study's best, 0 = its worst; 1 for a study's only ranked trial, NaN without
    a rank (or without a study)."""
    import numpy as np

    ranked: dict[Any, int] = {}
    for key, value in zip(study, rank.tolist(), strict=True):
        if not _missing(key):
            ranked[key] = ranked.get(key, 0) + (not math.isnan(value))
    count = np.array([math.nan if _missing(k) else ranked[k] for k in study], dtype=float)
    quality = 1.0 - (rank - 1) / np.where(count > 1, count - 1, math.nan)
    return np.where(~np.isnan(rank) & (count == 1), 1.0, quality)


def _best_per_budget(
    candidates: Any, key: Any, study: list[Any], trial_num: list[Any], budget: list[Any]
) -> Any:
    """A mask of the first ``PARALLEL_TOP`` of ``candidates`` per budget, in the order of
    ``key`` (smaller first), then study, then trial number; missing values sort last, ties
    keep the rows' order."""
    import numpy as np

    def last(value: Any) -> tuple[bool, Any]:
        return (True, 0) if _missing(value) else (False, value)

    keys = key.tolist()
    order = sorted(candidates.tolist(), key=lambda i: (keys[i], last(study[i]), last(trial_num[i])))
    chosen = np.zeros(len(budget), dtype=bool)
    taken: dict[Any, int] = {}
    for i in order:
        group = None if _missing(budget[i]) else budget[i]
        if taken.get(group, 0) < PARALLEL_TOP:
            taken[group] = taken.get(group, 0) + 1
            chosen[i] = True
    return chosen


def training_dynamics_figure(rows: Sequence[dict[str, Any]]) -> Figure | None:
    """Stop reasons per budget, and the distributions of best_epoch and of the gap after it."""
    import numpy as np

    from .schema import STOP_REASONS

    frame = trial_frame(rows)
    if not len(frame):
        return None
    budgets = sorted(set(frame["budget"].tolist()), key=budget_sort_key)
    labels = [b if b is not None else "(none)" for b in budgets]
    fig = _figure(12, 3.6, left=0.5, right=0.1, bottom=0.7, top=0.3, wspace=0.3)
    ax_stop, ax_best, ax_gap = fig.subplots(1, 3)
    colors = {
        "completed": "#2c7fb8",
        "early_stopped": "#7fcdbb",
        "diverged": "#c0392b",
        "pruned": "#fdae61",
        "failed": "#6a3d9a",
        "running": "#bbbbbb",
        "unknown": "#dddddd",
    }
    in_budget = [_equals(frame["budget"], b) for b in budgets]
    left = np.zeros(len(budgets))
    for reason in STOP_REASONS:
        is_reason = _equals(frame["stop_reason"], reason)
        counts = np.array([float((is_reason & cell).sum()) for cell in in_budget])
        if counts.any():
            ax_stop.barh(labels, counts, left=left, color=colors[reason], label=reason)
            left += counts
    ax_stop.set_xlabel("trials")
    ax_stop.set_title("How training ended")
    if left.any():
        ax_stop.legend(fontsize=7)
    ax_stop.invert_yaxis()
    best_epoch, epochs_trained = frame["best_epoch"], frame["epochs_trained"]
    healthy = frame["_diverged_false"] & np.isfinite(best_epoch) & np.isfinite(epochs_trained)
    best_data = [best_epoch[healthy & cell] for cell in in_budget]
    gap_data = [(epochs_trained - best_epoch)[healthy & cell] for cell in in_budget]
    tick_labels = [f"{label}\nn={len(d)}" for label, d in zip(labels, best_data, strict=True)]
    for ax, data, title in (
        (ax_best, best_data, "best_epoch (non-diverged trials)"),
        (ax_gap, gap_data, "epochs_trained − best_epoch"),
    ):
        positions = [i for i, d in enumerate(data) if len(d)]
        if positions:
            ax.boxplot([data[i] for i in positions], positions=positions, widths=0.6)
        ax.set_xticks(range(len(labels)), labels=tick_labels)
        ax.set_title(title)
        ax.set_ylabel("epochs")
    caption = (
        "Left: stop_reason counts per budget. Middle and right: distributions of best_epoch and "
        "of epochs_trained − best_epoch (boxes: quartiles, whiskers: 1.5 IQR) per budget."
    )
    return Figure(FIGURE_NAMES[3], "Early stopping and best epochs", caption, _png(fig))


def importance_figure(findings: Sequence[Finding]) -> Figure | None:
    """Bars of the PED-ANOVA importances per budget (the param_importance finding)."""
    finding = _find(findings, "param_importance")
    if finding is None:
        return None
    by_budget: dict[str, list[tuple[str, float]]] = {}
    for budget, _, parameter, importance, _ in finding.rows:
        if parameter is not None and _is_number(importance):
            by_budget.setdefault(budget, []).append((parameter, float(importance)))
    if not by_budget:
        return None
    budgets = list(by_budget)
    ncols = min(4, len(budgets))
    nrows = math.ceil(len(budgets) / ncols)
    fig = _figure(
        3.1 * ncols,
        3.0 * nrows,
        left=1.05,
        right=0.15,
        bottom=0.6,
        top=0.3,
        wspace=0.75,
        hspace=0.6,
    )
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for index, budget in enumerate(budgets):
        ax = axes[index // ncols][index % ncols]
        items = by_budget[budget]
        ax.barh([p for p, _ in items], [v for _, v in items], color="#2c7fb8")
        ax.invert_yaxis()
        ax.set_xlim(0, max(1e-9, max(v for _, v in items)) * 1.15)
        ax.set_title(f"budget {budget}")
        ax.set_xlabel("importance (share)")
    for index in range(len(budgets), nrows * ncols):
        axes[index // ncols][index % ncols].set_visible(False)
    caption = f"{finding.sentence} {finding.notes}"
    return Figure(FIGURE_NAMES[4], "Hyperparameter importance", caption, _png(fig))


PARALLEL_TOP = 20


def parallel_figure(rows: Sequence[dict[str, Any]]) -> Figure | None:
    """The best trials of each budget and every diverged trial, as lines across their
    hyperparameters and their quality within their study.

    All trials at once (600 lines and more) are an unreadable tangle; the best
    ``PARALLEL_TOP`` scored trials per budget (by quality within the study) show the region
    that works, the diverged ones where it breaks. The axes still span all trials.
    """
    import numpy as np
    from matplotlib import colormaps
    from matplotlib.collections import LineCollection

    frame = trial_frame(rows)
    if not len(frame):
        return None
    axes_names = [a for a in PARALLEL_AXES if np.isfinite(frame[a]).any()]
    quality = _quality_in_study(frame["study"].tolist(), frame["rank_in_study"])
    columns: list[np.ndarray] = []
    ticks: list[tuple[str, str]] = []
    for name in axes_names:
        values = frame[name]
        values = np.where(np.isfinite(values), values, np.nan)
        finite = values[np.isfinite(values)]
        low, high = float(finite.min()), float(finite.max())
        log = low > 0 and high / low >= 10
        scaled = np.log10(values) if log else values
        s_low, s_high = (math.log10(low), math.log10(high)) if log else (low, high)
        span = s_high - s_low
        columns.append((scaled - s_low) / span if span else np.full(len(values), 0.5))
        ticks.append((f"{low:.3g}", f"{high:.3g}" + (" (log)" if log else "")))
    columns.append(quality)
    ticks.append(("worst", "best"))
    labels = axes_names + ["quality in study"]
    matrix = np.column_stack(columns)
    x = np.arange(len(labels))
    fig = _figure(12, 4.8, left=0.3, right=0.1, bottom=0.45, top=0.2)
    ax = fig.add_subplot()
    diverged = frame["_diverged_true"]
    scored_all = np.isfinite(matrix[:, -1]) & ~diverged
    scored = _best_per_budget(
        np.flatnonzero(scored_all),
        -matrix[:, -1],
        frame["study"].tolist(),
        frame["trial_num"].tolist(),
        frame["budget"].tolist(),
    )
    other = np.zeros(len(frame), dtype=bool)

    def segments(mask: np.ndarray) -> list[np.ndarray]:
        """One (points, 2) polyline per trial; NaN (unknown value) breaks a line."""
        chosen = matrix[mask]
        return list(np.stack([np.broadcast_to(x, chosen.shape), chosen], axis=-1))

    if other.any():
        ax.add_collection(LineCollection(segments(other), colors="#bbbbbb", linewidths=0.5))
    if scored.any():
        order = np.argsort(matrix[scored, -1], kind="stable")  # best drawn last, on top
        polylines = segments(scored)
        lines = LineCollection(
            [polylines[i] for i in order],
            cmap=colormaps["viridis"],
            linewidths=0.6,
        )
        lines.set_array(matrix[scored, -1][order])
        lines.set_clim(0, 1)
        ax.add_collection(lines)
        fig.colorbar(lines, ax=ax, label="quality in study (1 = best)", pad=0.01)
    if diverged.any():
        ax.add_collection(LineCollection(segments(diverged), colors="#c0392b", linewidths=1.0))
    for i, (bottom, top) in enumerate(ticks):
        ax.axvline(i, color="#555555", lw=0.8)
        ax.text(i, -0.04, bottom, ha="center", va="top", fontsize=7)
        ax.text(i, 1.04, top, ha="center", va="bottom", fontsize=7)
    ax.set_xlim(-0.3, len(labels) - 0.7)
    ax.set_ylim(-0.12, 1.12)
    ax.set_xticks(x, labels=labels, fontsize=8)
    ax.set_yticks([])
    n_scored, n_div = int(scored.sum()), int(diverged.sum())
    caption = (
        f"The best {PARALLEL_TOP} scored trials of each budget ({n_scored} of "
        f"{int(scored_all.sum())} scored; colour = 1 − (rank − 1)/(ranked − 1) within the "
        f"study) and all {n_div} diverged trials (red), of {len(frame)} trials. Each axis "
        "spans the observed range of all trials, on a log scale where noted."
    )
    return Figure(
        FIGURE_NAMES[5],
        "Best trials per budget and diverged trials (parallel coordinates)",
        caption,
        _png(fig),
    )


def make_figures(data: ReportData) -> list[Figure]:
    """Every figure that has data, in report order.

    A figure that cannot be drawn is left out and named in ``data.figure_problems`` (shown in
    the report) instead of costing the dataset: the data files are already complete.
    """
    import matplotlib
    import matplotlib.style

    threshold = data.meta.get("settings", {}).get("diverge_threshold")
    drawers: list[tuple[str, Callable[[], Figure | None]]] = [
        (FIGURE_NAMES[0], lambda: heatmap_figure(data.findings)),
        (FIGURE_NAMES[1], lambda: architecture_figure(data.rows)),
        (FIGURE_NAMES[2], lambda: diverged_curves_figure(data.diverged, threshold)),
        (FIGURE_NAMES[3], lambda: training_dynamics_figure(data.rows)),
        (FIGURE_NAMES[4], lambda: importance_figure(data.findings)),
        (FIGURE_NAMES[5], lambda: parallel_figure(data.rows)),
        (FIGURE_NAMES[6], lambda: divergence_interaction_figure(data.findings)),
    ]
    made: list[Figure] = []
    # drawn from matplotlib's defaults, not the user's matplotlibrc: the same bytes on every
    # machine and whatever the user's settings (a later run keeps them when nothing changed)
    with matplotlib.style.context("default"):
        matplotlib.rcParams.update(_RC)
        for name, draw in drawers:
            try:
                figure = draw()
            except Exception as err:  # one figure's failure must not lose the report
                data.figure_problems.append(f"{name}: not drawn ({type(err).__name__}: {err})")
                continue
            if figure is not None:
                made.append(figure)
    return made


# --------------------------------------------------------------------------------------------
# HTML
# --------------------------------------------------------------------------------------------

_STYLE = """
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #222;
       max-width: 1180px; margin: 0 auto; padding: 1.5rem; background: #fff; }
h1 { margin-bottom: .2rem; } h2 { border-bottom: 1px solid #ddd; padding-bottom: .2rem;
margin-top: 2.2rem; } h3 { margin-bottom: .3rem; }
figure { margin: 1.2rem 0; } figure img { max-width: 100%; height: auto;
border: 1px solid #eee; } figcaption { color: #555; font-size: 13px; }
table { border-collapse: collapse; font-size: 13px; margin: .4rem 0 1rem; }
th, td { border: 1px solid #ddd; padding: 2px 7px; text-align: left; }
th { background: #f4f4f4; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.na { color: #a05a00; } .notes { color: #666; font-size: 12px; } .meta { color: #555; }
nav ul { columns: 2; } code { background: #f4f4f4; padding: 0 3px; }
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _anchor(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text.lower()).strip("-")


def _table_html(finding: Finding) -> str:
    head = "".join(f"<th>{_e(c)}</th>" for c in finding.columns)
    body = []
    for row in finding.rows:
        cells = []
        for value in row:
            if value is None:
                cells.append("<td></td>")
            elif _is_number(value):
                cells.append(f'<td class="num">{_e(fmt(value))}</td>')
            elif value == INSUFFICIENT:
                cells.append(f'<td class="na">{_e(value)}</td>')
            else:
                cells.append(f"<td>{_e(fmt(value))}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    table = f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
    if len(finding.rows) > LONG_TABLE:
        return f"<details><summary>table ({len(finding.rows)} rows)</summary>{table}</details>"
    return table


def render_html(data: ReportData, figures: Sequence[Figure]) -> str:
    """The complete page; every value from the inputs goes through html.escape."""
    meta = data.meta
    title = "HPO analysis report"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{title}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{title}</h1>",
        f'<p class="meta">{_e(meta.get("n_trials", len(data.rows)))} trials from '
        f"{_e(meta.get('n_studies', ''))} studies, {_e(meta.get('n_diverged', ''))} diverged. "
        f"Drawn by hpo-analysis {_e(meta.get('tool_version', ''))} from the files beside it "
        "(the generation time is in README.md and hpo_full.json).</p>",
        "<nav><ul>",
        '<li><a href="#figures">Figures</a></li>',
    ]
    sections = [s for s in SECTIONS if any(f.section == s for f in data.findings)]
    sections += sorted({f.section for f in data.findings} - set(sections))
    parts += [f'<li><a href="#{_anchor(s)}">{_e(s)}</a></li>' for s in sections]
    parts.append("</ul></nav>")
    parts.append('<h2 id="figures">Figures</h2>')
    for figure in figures:
        encoded = base64.b64encode(figure.png).decode("ascii")
        parts.append(
            f'<figure id="{_anchor(figure.name)}"><h3>{_e(figure.title)}</h3>'
            f'<img src="data:image/png;base64,{encoded}" alt="{_e(figure.title)}">'
            f"<figcaption>{_e(figure.caption)}</figcaption></figure>"
        )
    if not figures:
        parts.append("<p>No figure has data.</p>")
    for problem in data.figure_problems:
        parts.append(f'<p class="notes">{_e(problem)}</p>')
    top_k = f" Top-k uses k = {_e(data.top_k)}." if data.top_k else ""
    parts.append(f'<p class="notes">{_e(data.thresholds_text)}{top_k}</p>')
    for section in sections:
        parts.append(f'<h2 id="{_anchor(section)}">{_e(section)}</h2>')
        for finding in (f for f in data.findings if f.section == section):
            parts.append(f'<h3 id="{_anchor(finding.id)}">{_e(finding.title)}</h3>')
            parts.append(f"<p>{_e(finding.sentence)} (n = {_e(finding.n)})</p>")
            if finding.rows:
                parts.append(_table_html(finding))
            if finding.notes:
                parts.append(f'<p class="notes">{_e(finding.notes)}</p>')
    parts.append("</body></html>\n")
    return "\n".join(parts)


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------


def write_report(directory: str | os.PathLike[str]) -> list[str]:
    """Write ``report.html`` and the ``figure_*.png`` files into an extracted output directory,
    from the files in it (``hpo-analysis report DIR``).

    Each file is replaced atomically; figures this tool wrote before but has no data for now
    are removed. Returns the figure paths relative to ``directory``. Raises
    :class:`ReportError` (one line) when the directory is not usable or matplotlib is missing.
    """
    if not report_available():
        raise ReportError(f"the report needs matplotlib: {INSTALL_HINT}")
    root = Path(directory)
    return write_report_files(root, load_report_data(root), atomic=True)


def write_report_files(directory: Path, data: ReportData, *, atomic: bool) -> list[str]:
    """Draw ``data`` and write ``report.html`` and the figures into ``directory``.

    ``atomic``: replace each file atomically and fsync the directory (a live output
    directory); extract writes into its staging directory, which is made durable and swapped
    in as a whole. Returns the names of the figures written.
    """
    figures = make_figures(data)
    write = write_file_atomic if atomic else (lambda path, data: path.write_bytes(data))
    written = []
    for figure in figures:
        write(directory / figure.name, figure.png)
        written.append(figure.name)
    for name in FIGURE_NAMES:
        if name not in written:
            (directory / name).unlink(missing_ok=True)
    write(directory / REPORT_HTML, render_html(data, figures).encode("utf-8"))
    if atomic:
        fsync_dir(directory)
    return written
