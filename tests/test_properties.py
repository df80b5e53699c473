"""Property tests: generated and corrupted trial files never crash extract, and every file is
accounted for."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hpo_analysis import Settings, extract
from hpo_analysis.write.cells import FORMULA_TRIGGERS

from .conftest import read_csv

numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-10, 10**6),
    st.text(max_size=6),
    st.none(),
    st.booleans(),
)
curve_points = st.lists(
    st.one_of(
        st.fixed_dictionaries(
            {"epoch": st.one_of(st.integers(-2, 30), st.text(max_size=3), st.none())},
            optional={"train_loss": numbers, "val_loss": numbers, "val_auc": numbers},
        ),
        numbers,
    ),
    max_size=12,
)
trial_bodies = st.fixed_dictionaries(
    {},
    optional={
        "trial_number": st.one_of(st.integers(0, 20), numbers),
        "value": numbers,
        "state": st.sampled_from(
            ["COMPLETE", "TrialState.COMPLETE", "PRUNED", "FAIL", "RUNNING", "WAITING", "weird", ""]
        ),
        "params": st.dictionaries(
            st.sampled_from(["learning_rate", "epochs", "dropout", "arch_idx", "=evil", "opt"]),
            numbers,
            max_size=4,
        ),
        "architecture": st.one_of(
            st.dictionaries(
                st.sampled_from(["d_model", "n_layers", "n_heads", "d_ff"]), numbers, max_size=4
            ),
            numbers,
        ),
        "user_attrs": st.fixed_dictionaries(
            {}, optional={"learning_curve": curve_points, "arch_idx": numbers}
        ),
        "datetime_start": st.text(max_size=30),
    },
)


def corrupt(data: bytes, how: int, where: int) -> bytes:
    if not data:
        return data
    where %= len(data)
    if how == 0:
        return data
    if how == 1:
        return data[:where]  # truncation
    if how == 2:
        return data[:where] + bytes([data[where] ^ 0xFF]) + data[where + 1 :]  # byte flip
    if how == 3:
        return data[:where] + b"\xc3" + data[where:]  # broken UTF-8
    return data + data[:where]  # trailing garbage


files = st.lists(
    st.tuples(
        trial_bodies,
        st.integers(0, 4),
        st.integers(0, 10**6),
        st.sampled_from(["s_2M_h1", "s_2B_h3", "=cmd|x"]),
    ),
    min_size=1,
    max_size=6,
)


def _write(root: Path, spec: list[tuple[dict[str, Any], int, int, str]]) -> None:
    for index, (body, how, where, study) in enumerate(spec):
        data = json.dumps(body).encode()
        path = root / study / "trials" / f"trial_{index:04d}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(corrupt(data, how, where))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(files)
def test_never_crashes_and_accounts_for_every_file(
    spec: list[tuple[dict[str, Any], int, int, str]],
) -> None:
    root = Path(tempfile.mkdtemp())
    try:
        src = root / "hpo"
        _write(src, spec)
        result = extract([src], root / "out", Settings())
        assert result.validation_failures == []
        manifest = read_csv(root / "out" / "manifest.csv")
        summary = read_csv(root / "out" / "hpo_summary.csv")
        assert len(manifest) == len(spec) == result.n_files
        assert len(summary) == sum(
            int(m["n_trials"] or 0) for m in manifest if m["status"] in ("ok", "warning")
        )
        for row in summary:
            for value in row.values():
                if value.startswith(FORMULA_TRIGGERS):
                    float(value)  # only plain numbers may start with a trigger character
        first = {p.name: p.read_bytes() for p in (root / "out").iterdir() if p.is_file()}
        extract([src], root / "out", Settings())
        second = {p.name: p.read_bytes() for p in (root / "out").iterdir() if p.is_file()}
        first.pop("README.md"), second.pop("README.md")  # carries the generation time
        for name in ("hpo_full.json", "diverged_analysis.json"):
            first[name] = _without_generated(first[name])
            second[name] = _without_generated(second[name])
        assert first == second
    finally:
        shutil.rmtree(root)


def _without_generated(data: bytes) -> bytes:
    doc = json.loads(data)
    doc["metadata"].pop("generated")
    return json.dumps(doc).encode()
