"""Broken rules of the devices context."""

from __future__ import annotations

from biblioverse.errors import Conflict, NotFound


class Sip2AccountNotFound(NotFound):
    code = "sip2_account_not_found"

    def __init__(self, key: object) -> None:
        super().__init__("SIP2 account", key)


class AlarmNotFound(NotFound):
    code = "alarm_not_found"

    def __init__(self, key: object) -> None:
        super().__init__("alarm", key)


class LinkageRuleNotFound(NotFound):
    code = "linkage_rule_not_found"

    def __init__(self, key: object) -> None:
        super().__init__("linkage rule", key)


class InventoryNotFound(NotFound):
    code = "inventory_not_found"

    def __init__(self, key: object) -> None:
        super().__init__("inventory", key)


class InventoryClosed(Conflict):
    code = "inventory_closed"

    def __init__(self, inventory_id: int) -> None:
        super().__init__(f"inventory {inventory_id} is closed")
