"""Broken rules of the building: alarms and linkage rules."""

from __future__ import annotations

from biblioverse.errors import NotFound


class AlarmNotFound(NotFound):
    code = "alarm_not_found"

    def __init__(self, key: object) -> None:
        super().__init__("alarm", key)


class LinkageRuleNotFound(NotFound):
    code = "linkage_rule_not_found"

    def __init__(self, key: object) -> None:
        super().__init__("linkage rule", key)
