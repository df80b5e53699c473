"""Edges of the findings kept in the output's cache: kept files that cannot be parsed at all."""

from __future__ import annotations

from pathlib import Path

import pytest

from hpo_analysis import extract
from hpo_analysis.cache import CACHE_DIR, FINDINGS_FILE, INDEX_FILE, cached_findings
from hpo_analysis.example import generate_example
from hpo_analysis.model import Settings


@pytest.mark.parametrize(
    "content",
    [b"[" * 100_000 + b"\n", b'{"a":' * 100_000 + b"\n"],
    ids=["array", "object"],
)
def test_a_findings_file_nested_too_deep_is_not_used(tmp_path: Path, content: bytes) -> None:
    (tmp_path / CACHE_DIR).mkdir()
    (tmp_path / CACHE_DIR / FINDINGS_FILE).write_bytes(content)
    assert cached_findings(tmp_path, "key") is None


def _outputs(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in root.rglob("*")
        if p.is_file() and not p.relative_to(root).as_posix().startswith(CACHE_DIR)
    }


@pytest.mark.parametrize("name", [FINDINGS_FILE, INDEX_FILE])
def test_a_cache_file_nested_too_deep_gives_a_full_run(
    tmp_path: Path, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1767225600")
    tree = tmp_path / "hpo"
    generate_example(tree, budgets=("2M",), horizons=("h1",), trials_per_study=20)
    out = tmp_path / "analysis"
    extract([tree], out, Settings(), command="extract")
    computed = _outputs(out)
    kept = out / CACHE_DIR / name
    kept.write_bytes(b"[" * 100_000 + b"\n" + kept.read_bytes().partition(b"\n")[2])
    extract([tree], out, Settings(), command="extract")
    assert _outputs(out) == computed
