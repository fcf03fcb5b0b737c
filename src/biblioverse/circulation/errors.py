"""Broken rules of circulation."""

from __future__ import annotations

from biblioverse.errors import NotFound


class RuleNotFound(NotFound):
    code = "circulation_rule_not_found"

    def __init__(self, key: object) -> None:
        super().__init__("circulation rule", key)
