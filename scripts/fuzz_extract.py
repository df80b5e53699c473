"""Long fuzz run of ``extract`` (not part of the test suite).

Takes trial files of the simulated example, mutates them at random — truncation, byte flips,
invalid UTF-8, key deletion, type swaps, NaN injection, nesting, duplicates, junk files — and
checks, for every batch, that extract finishes without an unexpected exception, that every
file is in the manifest, that the trial rows equal the manifest's ok/warning trials, and that
validate finds nothing wrong.

    python scripts/fuzz_extract.py --files 10000 --batch 1000 --seed 1
"""

from __future__ import annotations

import argparse
import collections
import csv
import json
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from hpo_analysis import Settings, extract
from hpo_analysis.example import generate_example

SWAPS: list[Any] = [None, "0.001", "abc", True, [], {}, float("nan"), float("inf"), -1, 10**30]


def mutate_structure(doc: Any, rng: random.Random) -> Any:
    """Delete a key or swap a value's type somewhere in the document."""
    node = doc
    for _ in range(rng.randint(0, 4)):
        children = (
            list(node.items())
            if isinstance(node, dict)
            else list(enumerate(node))
            if isinstance(node, list)
            else []
        )
        containers = [(k, v) for k, v in children if isinstance(v, (dict, list)) and v]
        if not containers:
            break
        _, node = rng.choice(containers)
    if isinstance(node, dict) and node:
        key = rng.choice(sorted(node, key=str))
        if rng.random() < 0.5:
            del node[key]
        else:
            node[key] = rng.choice(SWAPS)
    elif isinstance(node, list) and node:
        index = rng.randrange(len(node))
        node[index] = rng.choice(SWAPS)
    return doc


def mutate_bytes(data: bytes, rng: random.Random) -> bytes:
    how = rng.randrange(6)
    where = rng.randrange(max(1, len(data)))
    if how == 0:
        return data[:where]
    if how == 1:
        flipped = bytearray(data)
        for _ in range(rng.randint(1, 8)):
            flipped[rng.randrange(len(flipped))] ^= 1 << rng.randrange(8)
        return bytes(flipped)
    if how == 2:
        return data[:where] + b"\xff\xfe" + data[where:]
    if how == 3:
        return b"\xef\xbb\xbf" + data  # BOM
    if how == 4:
        return b"[" * rng.randint(1, 50_000) + data
    return data + b"garbage"


def build_batch(pool: list[bytes], out: Path, count: int, rng: random.Random) -> int:
    studies = [f"fuzz_{b}_h{h}" for b in ("2M", "2B") for h in (1, 3)] + ["=HYPERLINK(1)"]
    for index in range(count):
        study = rng.choice(studies)
        doc = json.loads(rng.choice(pool))
        doc["trial_number"] = index  # unique, so most files reach normalize and derive
        base = json.dumps(doc, indent=2).encode()
        kind = rng.random()
        if kind < 0.3:
            data = base
        elif kind < 0.6:
            doc = json.loads(base)
            data = json.dumps(mutate_structure(doc, rng)).encode()
        elif kind < 0.9:
            data = mutate_bytes(base, rng)
        else:
            data = rng.choice([b"", b"{}", b"null", b"[]", b"42", b'"x"', b"NaN"])
        name = rng.choice(
            [
                f"trial_{index:05d}.json",
                f"trial_{index:05d}.json",
                f"trial_{rng.randrange(50):05d}_dup{index}.json",
                ".DS_Store",
                f"trial_{index}.json.tmp",
            ]
        )
        path = out / study / "trials" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            name = f"trial_{index:05d}_x.json"
            path = out / study / "trials" / name
        path.write_bytes(data)
    return sum(1 for p in out.rglob("*") if p.is_file())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=1_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    work = Path(tempfile.mkdtemp(prefix="hpo-fuzz-"))
    statuses: collections.Counter[str] = collections.Counter()
    failures = 0
    total_files = total_trials = 0
    started = time.perf_counter()
    try:
        generate_example(
            work / "seed", budgets=("2M", "2B"), horizons=("h1",), trials_per_study=20, n_diverged=3
        )
        pool = [p.read_bytes() for p in sorted((work / "seed").rglob("*.json"))]
        batch_index = 0
        while total_files < args.files:
            batch_index += 1
            src, out = work / f"in{batch_index}", work / f"out{batch_index}"
            n_files = build_batch(pool, src, min(args.batch, args.files - total_files), rng)
            try:
                result = extract([src], out, Settings())
            except Exception as err:  # noqa: BLE001 - the point of fuzzing
                failures += 1
                print(f"batch {batch_index}: CRASH {type(err).__name__}: {err}")
                continue
            with open(out / "manifest.csv", encoding="utf-8", newline="") as handle:
                manifest = list(csv.DictReader(handle))
            with open(out / "hpo_summary.csv", encoding="utf-8", newline="") as handle:
                rows = sum(1 for _ in csv.DictReader(handle))
            accounted = sum(
                int(m["n_trials"] or 0) for m in manifest if m["status"] in ("ok", "warning")
            )
            problems = list(result.validation_failures)
            if len(manifest) != n_files:
                problems.append(f"{n_files} files but {len(manifest)} manifest rows")
            if rows != accounted:
                problems.append(f"{rows} rows but manifest accounts for {accounted}")
            if problems:
                failures += 1
                print(f"batch {batch_index}: FAILED {problems[:3]}")
            statuses.update(m["status"] for m in manifest)
            total_files += n_files
            total_trials += rows
            shutil.rmtree(src)
            shutil.rmtree(out)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    elapsed = time.perf_counter() - started
    print(
        f"fuzzed {total_files} files in {batch_index} batches ({elapsed:.1f} s): "
        f"{total_trials} trials extracted; statuses {dict(sorted(statuses.items()))}; "
        f"{failures} failed batches"
    )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
