"""Broken rules of smart shelves and inventories."""

from __future__ import annotations

from biblioverse.errors import Conflict, NotFound


class InventoryNotFound(NotFound):
    code = "inventory_not_found"

    def __init__(self, key: object) -> None:
        super().__init__("inventory", key)


class InventoryClosed(Conflict):
    code = "inventory_closed"

    def __init__(self, inventory_id: int) -> None:
        super().__init__(f"inventory {inventory_id} is closed")
