"""Rewind: a terminal incident console for ML model rollbacks."""

__version__ = "0.1.0"
