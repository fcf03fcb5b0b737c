"""What every device's MQTT shares: where the topics live, and how to reach the broker."""

from __future__ import annotations

from urllib.parse import urlsplit

TOPIC_ROOT = "biblioverse/v1/devices"


def mqtt_settings(url: str) -> dict[str, object]:
    """`mqtt://user:password@host:port` (or `mqtts://`) to aiomqtt's arguments."""
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts", "tcp"):
        raise ValueError(f"BIBLIOVERSE_MQTT_URL: scheme {parts.scheme!r}; use mqtt:// or mqtts://")
    out: dict[str, object] = {
        "hostname": parts.hostname or "127.0.0.1",
        "port": parts.port or (8883 if parts.scheme == "mqtts" else 1883),
    }
    if parts.username:
        out["username"] = parts.username
        out["password"] = parts.password
    if parts.scheme == "mqtts":
        import ssl

        out["tls_context"] = ssl.create_default_context()
    return out
