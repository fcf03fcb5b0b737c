"""The SIP2 wire format: frames, fixed and identified fields, sequence numbers and
checksums. Pure: no I/O, no database, no framework.

A frame is one message up to its carriage return. Requests are read the tolerant way
established servers read them (docs/sip2.md lists each case): a line feed after the carriage
return, trailing NULs, a checksum in lower-case hex or without its leading zeros, fixed fields
shorter or longer than the standard (the identified fields are found where they start), blank
optional fields and field codes this server does not know (kept, and ignored). Responses are
always written the strict way.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

FIELD_SEP = "|"
MAX_FIELD = 255  # characters in a variable-length field, by the standard

# Two upper-case letters open an identified field.
_CODE = re.compile(r"[A-Z]{2}")
# The error-detection trailer: AY<sequence>AZ<checksum> or, in 96/97, AZ<checksum> alone.
# Some terminals drop the checksum's leading zeros or write it in lower case.
_TRAILER = re.compile(rb"(?:\|?AY(?P<seq>[0-9]{1,2}))?(?:\|?AZ(?P<sum>[0-9A-Fa-f]{1,4}))?\|?$")
_AFTER_SEQUENCE = re.compile(rb"AY[0-9]{1,2}$")


class Field(StrEnum):
    """SIP2 2.00 field codes, by their names in the standard. A member is its code: it
    compares, hashes and formats as the two letters."""

    ALERT_TYPE = "CV"
    BLOCKED_CARD_MESSAGE = "AL"
    CALL_NUMBER = "CS"
    CANCEL = "BI"
    CHARGED_ITEMS = "AU"
    CHARGED_ITEMS_LIMIT = "CB"
    CHECKSUM = "AZ"
    COLLECTION_CODE = "CR"
    CURRENCY_TYPE = "BH"
    CURRENT_LOCATION = "AP"
    DESTINATION_LOCATION = "CT"
    DUE_DATE = "AH"
    EMAIL_ADDRESS = "BE"
    END_ITEM = "BQ"
    EXPIRATION_DATE = "BW"
    FEE_ACKNOWLEDGED = "BO"
    FEE_AMOUNT = "BV"
    FEE_IDENTIFIER = "CG"
    FEE_LIMIT = "CC"
    FEE_TYPE = "BT"
    FINE_ITEMS = "AV"
    HOLD_ITEMS = "AS"
    HOLD_ITEMS_LIMIT = "BZ"
    HOLD_PATRON_ID = "CY"
    HOLD_PATRON_NAME = "DA"
    HOLD_PICKUP_DATE = "CM"
    HOLD_QUEUE_LENGTH = "CF"
    HOLD_TYPE = "BY"
    HOME_ADDRESS = "BD"
    HOME_PHONE_NUMBER = "BF"
    INSTITUTION_ID = "AO"
    ITEM_IDENTIFIER = "AB"
    ITEM_PROPERTIES = "CH"
    LIBRARY_NAME = "AM"
    LOCATION_CODE = "CP"
    LOGIN_PASSWORD = "CO"  # noqa: S105 (a field code, not a password)
    LOGIN_USER_ID = "CN"
    MEDIA_TYPE = "CK"
    OVERDUE_ITEMS = "AT"
    OVERDUE_ITEMS_LIMIT = "CA"
    OWNER = "BG"
    PATRON_IDENTIFIER = "AA"
    PATRON_PASSWORD = "AD"  # noqa: S105
    PERMANENT_LOCATION = "AQ"
    PERSONAL_NAME = "AE"
    PICKUP_LOCATION = "BS"
    PRINT_LINE = "AG"
    QUEUE_POSITION = "BR"
    RECALL_DATE = "CJ"
    RECALL_ITEMS = "BU"
    RENEWED_ITEMS = "BM"
    SCREEN_MESSAGE = "AF"
    SECURITY_INHIBIT = "CI"
    SEQUENCE_NUMBER = "AY"
    SORT_BIN = "CL"
    START_ITEM = "BP"
    SUPPORTED_MESSAGES = "BX"
    TERMINAL_LOCATION = "AN"
    TERMINAL_PASSWORD = "AC"  # noqa: S105
    TITLE_IDENTIFIER = "AJ"
    TRANSACTION_ID = "BK"
    UNAVAILABLE_HOLD_ITEMS = "CD"
    UNRENEWED_ITEMS = "BN"
    VALID_PATRON = "BL"
    VALID_PATRON_PASSWORD = "CQ"  # noqa: S105


class FrameError(ValueError):
    """A frame that cannot be read as a SIP2 message (the reason is for the device log)."""


class UnknownCommand(FrameError):
    """A frame with a command code SIP2 2.00 does not define (or this server does not read)."""

    def __init__(self, command: str) -> None:
        super().__init__(f"unsupported command {command}")
        self.command = command


@dataclass(frozen=True)
class Spec:
    name: str
    fixed: tuple[tuple[str, int], ...]  # (name, length) in order
    codes: frozenset[str]  # the identified fields the standard gives this request

    @property
    def fixed_length(self) -> int:
        return sum(n for _, n in self.fixed)


def _spec(name: str, fixed: Iterable[tuple[str, int]], codes: str) -> Spec:
    return Spec(name, tuple(fixed), frozenset(codes.split()))


DATE = 18  # YYYYMMDDZZZZHHMMSS
REQUESTS: dict[str, Spec] = {
    "93": _spec("login", [("uid_algorithm", 1), ("pwd_algorithm", 1)], "CN CO CP"),
    "99": _spec(
        "sc_status",
        [("status_code", 1), ("max_print_width", 3), ("protocol_version", 4)],
        "",
    ),
    "97": _spec("resend", [], ""),
    "23": _spec("patron_status", [("language", 3), ("transaction_date", DATE)], "AO AA AC AD"),
    "63": _spec(
        "patron_information",
        [("language", 3), ("transaction_date", DATE), ("summary", 10)],
        "AO AA AC AD BP BQ",
    ),
    "11": _spec(
        "checkout",
        [
            ("sc_renewal_policy", 1),
            ("no_block", 1),
            ("transaction_date", DATE),
            ("nb_due_date", DATE),
        ],
        "AO AA AB AC CH AD BO BI",
    ),
    "09": _spec(
        "checkin",
        [("no_block", 1), ("transaction_date", DATE), ("return_date", DATE)],
        "AP AO AB AC CH BI",
    ),
    "29": _spec(
        "renew",
        [
            ("third_party_allowed", 1),
            ("no_block", 1),
            ("transaction_date", DATE),
            ("nb_due_date", DATE),
        ],
        "AO AA AD AB AJ AC CH BO",
    ),
    "65": _spec("renew_all", [("transaction_date", DATE)], "AO AA AD AC BO"),
    "17": _spec("item_information", [("transaction_date", DATE)], "AO AB AC"),
    "19": _spec("item_status_update", [("transaction_date", DATE)], "AO AB AC CH"),
    "15": _spec(
        "hold",
        [("hold_mode", 1), ("transaction_date", DATE)],
        "BW BS BY AO AA AD AB AJ AC BO",
    ),
    "37": _spec(
        "fee_paid",
        [
            ("transaction_date", DATE),
            ("fee_type", 2),
            ("payment_type", 2),
            ("currency_type", 3),
        ],
        "BV AO AA AC AD CG BK",
    ),
    "01": _spec("block_patron", [("card_retained", 1), ("transaction_date", DATE)], "AO AL AA AC"),
    "25": _spec("patron_enable", [("transaction_date", DATE)], "AO AA AC AD"),
    "35": _spec("end_patron_session", [("transaction_date", DATE)], "AO AA AC AD"),
}


@dataclass
class Request:
    command: str
    fixed: dict[str, str]
    fields: dict[str, list[str]] = field(default_factory=dict)
    sequence: str | None = None

    @property
    def name(self) -> str:
        return REQUESTS[self.command].name

    def get(self, code: str) -> str:
        """The first value of a field, without surrounding blanks ("" when absent)."""
        values = self.fields.get(code)
        return values[0].strip() if values else ""

    def flag(self, name: str) -> bool:
        return self.fixed.get(name, "").strip().upper() == "Y"


# --- error detection -------------------------------------------------------------------------


def checksum(data: bytes) -> str:
    """Two's complement of the 16-bit sum of the bytes, as four upper-case hex digits."""
    return f"{(-sum(data)) & 0xFFFF:04X}"


@dataclass(frozen=True)
class Trailer:
    body: bytes  # the message without its trailer
    sequence: str | None
    checksum: str | None
    checksum_ok: bool | None  # None when the frame carries no checksum


def _opens_field(frame: bytes, at: int) -> bool:
    """Whether the two letters at ``at`` open a field (after a separator, a sequence number or
    the message's fixed fields) rather than end a value that lacks its separator."""
    before = frame[:at]
    if before.endswith(b"|") or _AFTER_SEQUENCE.search(before):
        return True
    spec = REQUESTS.get(before[:2].decode("latin-1"))
    return spec is not None and at == 2 + spec.fixed_length


def _unreadable_checksum(frame: bytes) -> Trailer | None:
    """A frame ending in an AZ field that holds no checksum: corrupted, like a wrong sum."""
    end = len(frame) - 1 if frame.endswith(b"|") else len(frame)
    start = frame.rfind(b"|", 0, end) + 1  # the last field
    at = frame.find(b"AZ", start, end)
    while at >= 0 and not _opens_field(frame, at):
        at = frame.find(b"AZ", at + 1, end)
    if at < 0:
        return None
    seq = _AFTER_SEQUENCE.search(frame[:at])
    sequence = seq.group()[2:].decode() if seq else None
    return Trailer(frame[:at], sequence, frame[at + 2 : end].decode("latin-1"), False)


def trailer(frame: bytes) -> Trailer:
    """Split off AY/AZ and check the checksum over every byte from the first through 'AZ'.
    An AZ that is empty or not one to four hex digits counts as a wrong checksum."""
    m = _TRAILER.search(frame)
    if m is None or m.start() == m.end() or not m.group("sum"):
        unreadable = _unreadable_checksum(frame)
        if unreadable is not None:
            return unreadable
    if m is None or m.start() == m.end() or not (m.group("seq") or m.group("sum")):
        return Trailer(frame, None, None, None)
    seq, given = m.group("seq"), m.group("sum")
    body = frame[: m.start()]
    # A field's separator before the trailer belongs to the body (it is summed).
    if frame[m.start() : m.start() + 1] == b"|":
        body += b"|"
    if given is None:
        return Trailer(body, seq.decode(), None, None)
    through_az = frame[: m.end() - len(given)]
    ok = (sum(through_az) + int(given, 16)) & 0xFFFF == 0
    return Trailer(body, seq.decode() if seq else None, given.decode(), ok)


def clean_frame(raw: bytes) -> bytes:
    """A frame as read up to its carriage return, without the line feed some terminals send
    after the CR (which the reader finds at the start of the next frame) and trailing NULs."""
    return raw.strip(b"\r\n\x00")


# --- reading requests ------------------------------------------------------------------------


def _fixed_end(spec: Spec, body: str) -> int:
    """Where the identified fields begin: at the standard fixed length when a field code of
    this message stands there, otherwise at the first such code (fixed fields of the wrong
    length), otherwise the whole body is fixed."""
    n = spec.fixed_length
    if len(body) <= n:
        return len(body)
    if _CODE.fullmatch(body[n : n + 2]):
        return n
    for i in range(len(body) - 1):
        if body[i : i + 2] in spec.codes:
            return i
    return n


def parse(text: str, sequence: str | None = None) -> Request:
    """A request from the text of a frame whose trailer was split off."""
    if len(text) < 2 or not text[:2].isdigit():
        raise FrameError(f"no command code at the start: {text[:10]!r}")
    command = text[:2]
    spec = REQUESTS.get(command)
    if spec is None:
        raise UnknownCommand(command)
    body = text[2:]
    end = _fixed_end(spec, body)
    fixed_text, rest = body[:end], body[end:]
    fixed: dict[str, str] = {}
    pos = 0
    for name, length in spec.fixed:
        fixed[name] = fixed_text[pos : pos + length]
        pos += length
    fields: dict[str, list[str]] = {}
    for chunk in rest.split(FIELD_SEP):
        if len(chunk) < 2 or not _CODE.fullmatch(chunk[:2]):
            continue  # blank, or garbage between separators
        fields.setdefault(chunk[:2], []).append(chunk[2:])
    return Request(command, fixed, fields, sequence)


_DIGITS = re.compile(r"\d+")


def parse_date(value: str, tz: dt.tzinfo) -> dt.datetime | None:
    """A SIP2 date (YYYYMMDDZZZZHHMMSS) or None when blank or unreadable. Blanks in the zone
    mean local time; 'Z' at its end means UTC. Terminals that leave out the zone or the time
    are read too."""
    text = value.strip()
    if not text:
        return None
    utc = len(value) >= 12 and value[8:12].rstrip().endswith("Z")
    digits = "".join(_DIGITS.findall(text))
    if len(digits) not in (8, 12, 14):
        return None
    try:
        day = dt.datetime.strptime(digits[:8], "%Y%m%d")
        h = int(digits[8:10] or 0)
        m = int(digits[10:12] or 0)
        s = int(digits[12:14] or 0)
        moment = day.replace(hour=h, minute=m, second=s)
    except ValueError:
        return None
    return moment.replace(tzinfo=dt.UTC if utc else tz)


def format_date(at: dt.datetime | None, tz: dt.tzinfo) -> str:
    """Local time with a blank zone, as the standard prefers; 18 blanks for no date."""
    if at is None:
        return " " * DATE
    return at.astimezone(tz).strftime("%Y%m%d    %H%M%S")


# --- writing responses -----------------------------------------------------------------------

_UNSAFE = str.maketrans({"|": "/", "\r": " ", "\n": " ", "\x00": ""})


def field_value(value: object) -> str:
    """A value made safe for a field: no separator, no CR, at most 255 characters."""
    return str(value).translate(_UNSAFE)[:MAX_FIELD]


def yn(value: bool) -> str:
    return "Y" if value else "N"


@dataclass(frozen=True)
class Response:
    command: str
    fixed: str
    fields: Sequence[tuple[str, object]] = ()

    def text(self) -> str:
        parts = [self.command, self.fixed]
        for code, value in self.fields:
            if value is None:
                continue
            values = value if isinstance(value, list | tuple) else [value]
            parts.extend(f"{code}{field_value(v)}{FIELD_SEP}" for v in values)
        return "".join(parts)


def encode(
    response: Response,
    *,
    encoding: str,
    sequence: str | None,
    error_detection: bool,
) -> bytes:
    """The frame, CR included. With error detection the sequence number of the request is
    echoed (0 when it had none) and a checksum closes the message; 96 carries no sequence."""
    data = response.text().encode(encoding, errors="replace")
    # One digit, as the standard has it (some terminals count on past 9).
    seq = (sequence or "0")[-1:].encode()
    if error_detection:
        if response.command != "96":
            data += b"AY" + seq
        data += b"AZ"
        data += checksum(data).encode()
    elif sequence is not None:
        data += b"AY" + seq
    return data + b"\r"
