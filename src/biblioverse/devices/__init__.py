"""What every device shares: its health, the messages' common header, MQTT dispatch and
the demo's traffic. The device registry and keys are accounts' (`accounts.DeviceKey`);
SIP2 machines, smart shelves and the building are contexts of their own."""

from biblioverse.devices.models import DeviceHealth

__all__ = ["DeviceHealth"]
