"""The names of the files in an output directory: one place, read by the writers, ``validate``,
the read side and the report alike (none of them needs the others for a file name).

Example::

    >>> SUMMARY_CSV, MANIFEST, OUTPUT_FILES[-1]
    ('hpo_summary.csv', 'manifest.csv', 'manifest.csv')
"""

from __future__ import annotations

SUMMARY_CSV = "hpo_summary.csv"
FULL_JSON = "hpo_full.json"
DIVERGED_CSV = "diverged_analysis.csv"
DIVERGED_JSON = "diverged_analysis.json"
FINDINGS_JSON = "findings.json"
README = "README.md"
MANIFEST = "manifest.csv"
TRIALS_PARQUET = "trials.parquet"
DIVERGED_PARQUET = "diverged.parquet"
CURVES_PARQUET = "curves.parquet"
FULL_JSON_INDEX = "hpo_full.index.parquet"
FULL_JSON_SCHEMA = "hpo_full.schema.json"
# every file of a complete output set; the manifest, written last, marks it complete
OUTPUT_FILES = (
    SUMMARY_CSV,
    FULL_JSON,
    FULL_JSON_INDEX,
    FULL_JSON_SCHEMA,
    DIVERGED_CSV,
    DIVERGED_JSON,
    FINDINGS_JSON,
    TRIALS_PARQUET,
    CURVES_PARQUET,
    DIVERGED_PARQUET,
    README,
    MANIFEST,
)
