"""Smart shelves: RFID tag data, where each copy was last read, collection checks,
inventories and gates."""

from biblioverse.shelves import inventory  # registers: it counts shelf reads for inventories
from biblioverse.shelves.errors import InventoryClosed, InventoryNotFound
from biblioverse.shelves.service import (
    AntennaMap,
    Applied,
    GateAnswer,
    TagResolver,
    Whereabouts,
    add_antenna,
    apply_reports,
    gate_check,
    standing_on,
    where_is,
)

__all__ = [
    "AntennaMap",
    "Applied",
    "GateAnswer",
    "InventoryClosed",
    "InventoryNotFound",
    "TagResolver",
    "Whereabouts",
    "add_antenna",
    "apply_reports",
    "gate_check",
    "inventory",
    "standing_on",
    "where_is",
]
