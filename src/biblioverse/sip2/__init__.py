"""Self-service machines over SIP2: an adapter onto circulation. Their accounts beside the
device registry, the wire codec, one handler per request, the asyncio server."""

from biblioverse.sip2.errors import Sip2AccountNotFound
from biblioverse.sip2.models import CHARSETS, Sip2Account, Sip2LogLine
from biblioverse.sip2.service import (
    SIP2_KINDS,
    Sip2AccountInput,
    Sip2Line,
    Terminal,
    Traffic,
    create_sip2_account,
    device_details,
    get_sip2_account,
    log_of,
    record_traffic,
    sip2_accounts,
    sip2_login,
    update_sip2_account,
)

__all__ = [
    "CHARSETS",
    "SIP2_KINDS",
    "Sip2Account",
    "Sip2AccountInput",
    "Sip2AccountNotFound",
    "Sip2Line",
    "Sip2LogLine",
    "Terminal",
    "Traffic",
    "create_sip2_account",
    "device_details",
    "get_sip2_account",
    "log_of",
    "record_traffic",
    "sip2_accounts",
    "sip2_login",
    "update_sip2_account",
]
