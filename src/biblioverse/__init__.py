"""Biblioverse: an open-source smart library platform."""

__version__ = "0.1.0"
