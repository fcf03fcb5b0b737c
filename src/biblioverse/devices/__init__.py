"""What every device shares: its health, the messages' common header, MQTT dispatch, and
the console's registry of every kind (`pages.py`). The device registry and keys are
accounts' (`accounts.DeviceKey`); SIP2 machines, smart shelves and the building are
contexts of their own, which add what they know of their devices (`Detail`, ADR 0038)."""

from biblioverse.devices.models import DeviceHealth
from biblioverse.devices.rules import Status
from biblioverse.devices.service import Detail, DetailSource, Line, registry

__all__ = ["Detail", "DetailSource", "DeviceHealth", "Line", "Status", "registry"]
