"""Devices: self-service machines over SIP2, RFID smart shelves and security gates."""

from biblioverse.devices.errors import Sip2AccountNotFound
from biblioverse.devices.models import CHARSETS, Sip2Account, Sip2LogLine
from biblioverse.devices.rfid.service import (
    AntennaMap,
    Applied,
    GateAnswer,
    Health,
    TagResolver,
    Whereabouts,
    add_antenna,
    apply_reports,
    gate_check,
    where_is,
)
from biblioverse.devices.service import (
    SIP2_KINDS,
    Sip2AccountInput,
    Sip2Line,
    Terminal,
    Traffic,
    create_sip2_account,
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
    "AntennaMap",
    "Applied",
    "GateAnswer",
    "Health",
    "Sip2Account",
    "Sip2AccountInput",
    "Sip2AccountNotFound",
    "Sip2Line",
    "Sip2LogLine",
    "TagResolver",
    "Terminal",
    "Traffic",
    "Whereabouts",
    "add_antenna",
    "apply_reports",
    "create_sip2_account",
    "gate_check",
    "get_sip2_account",
    "log_of",
    "record_traffic",
    "sip2_accounts",
    "sip2_login",
    "update_sip2_account",
    "where_is",
]
