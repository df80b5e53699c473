"""The package version, in a module of its own so that any stage can record it (the cache
header, the output metadata) without importing the package's public face."""

__version__ = "0.1.0"
