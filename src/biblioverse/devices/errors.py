"""Broken rules every device shares (none yet: each context names its own)."""

from __future__ import annotations
