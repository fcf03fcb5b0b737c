"""The building: sensors and their zones, ranges, alarms, and the linkage rules that act on
them."""

from biblioverse.building.errors import AlarmNotFound, LinkageRuleNotFound

__all__ = ["AlarmNotFound", "LinkageRuleNotFound"]
