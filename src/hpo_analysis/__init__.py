"""hpo-analysis: turn the raw output of HPO studies into an analysis-ready dataset.

Example::

    >>> import hpo_analysis
    >>> result = hpo_analysis.extract(["outputs/hpo"], "outputs/analysis")  # doctest: +SKIP
    >>> print(result.summary_line())  # doctest: +SKIP
    >>> ds = hpo_analysis.load("outputs/analysis")  # doctest: +SKIP
    >>> ds.sql("SELECT study, trial_num FROM trials WHERE is_best_in_study")  # doctest: +SKIP
"""

from __future__ import annotations

from .api import Dataset, DatasetError, QueryError, load  # noqa: E402
from .model import Settings  # noqa: E402
from .pipeline import ExtractResult, SourceError, extract  # noqa: E402
from .validate import validate_dir  # noqa: E402
from .version import __version__  # noqa: E402

__all__ = [
    "Dataset",
    "DatasetError",
    "ExtractResult",
    "QueryError",
    "Settings",
    "SourceError",
    "__version__",
    "extract",
    "load",
    "validate_dir",
]
