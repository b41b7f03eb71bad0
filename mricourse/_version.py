"""The package version (one place: the data manifests and the results files record it)."""

__version__ = "0.1.0"
