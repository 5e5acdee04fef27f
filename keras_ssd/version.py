"""The package version, written into exported models' metadata."""

__version__ = "0.1.0"
