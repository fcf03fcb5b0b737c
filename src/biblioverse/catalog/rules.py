"""Pure decisions about bibliographic data: ISBN/ISSN checks and what a MARC21 record says.

No I/O and no framework: these functions take a parsed pymarc record (a data structure)
and return plain values, so the rules are tested on real records in milliseconds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pymarc import Field, Record


class ItemType(StrEnum):
    BOOK = "book"
    PERIODICAL = "periodical"
    CHILDREN = "children"
    REFERENCE = "reference"
    PRECIOUS = "precious"  # precious and ancient books
    AUDIOVISUAL = "audiovisual"


class ItemStatus(StrEnum):
    AVAILABLE = "available"
    ON_LOAN = "on_loan"
    IN_TRANSIT = "in_transit"
    ON_HOLD_SHELF = "on_hold_shelf"
    MISSING = "missing"
    LOST = "lost"
    WITHDRAWN = "withdrawn"
    IN_PROCESSING = "in_processing"


_S = ItemStatus
# Circulation's own statuses: it moves copies into and out of them (lent, travelling, set
# aside), so a loan, transit or hold always stands behind them. Staff move copies by hand
# between the others only (found, missing, withdrawn, in processing).
CIRCULATION_STATUSES = frozenset({_S.ON_LOAN, _S.IN_TRANSIT, _S.ON_HOLD_SHELF})

# The item lifecycle: every writer of a copy's status goes through `status_move_allowed`.
# Staying in a status is always allowed (a copy received where it already is).
ITEM_MOVES: dict[ItemStatus, frozenset[ItemStatus]] = {
    _S.AVAILABLE: frozenset(
        {_S.ON_LOAN, _S.IN_TRANSIT, _S.ON_HOLD_SHELF, _S.MISSING, _S.LOST, _S.WITHDRAWN}
        | {_S.IN_PROCESSING}
    ),
    # Back (on the shelf, travelling home, for a hold), or lost when long overdue.
    _S.ON_LOAN: frozenset({_S.AVAILABLE, _S.IN_TRANSIT, _S.ON_HOLD_SHELF, _S.LOST}),
    _S.IN_TRANSIT: frozenset({_S.AVAILABLE, _S.ON_HOLD_SHELF, _S.MISSING}),
    _S.ON_HOLD_SHELF: frozenset({_S.ON_LOAN, _S.AVAILABLE, _S.IN_TRANSIT, _S.MISSING}),
    # Found again: scanned in (and maybe set aside for a hold), or given up.
    _S.MISSING: frozenset(
        {_S.AVAILABLE, _S.IN_TRANSIT, _S.ON_HOLD_SHELF, _S.LOST, _S.WITHDRAWN, _S.IN_PROCESSING}
    ),
    _S.LOST: frozenset(
        {_S.AVAILABLE, _S.IN_TRANSIT, _S.ON_HOLD_SHELF, _S.MISSING, _S.WITHDRAWN}
        | {_S.IN_PROCESSING}
    ),
    _S.WITHDRAWN: frozenset({_S.AVAILABLE, _S.IN_TRANSIT, _S.IN_PROCESSING}),
    _S.IN_PROCESSING: frozenset(
        {_S.AVAILABLE, _S.IN_TRANSIT, _S.ON_HOLD_SHELF, _S.MISSING, _S.WITHDRAWN}
    ),
}


def status_move_allowed(current: str, target: str, *, by_hand: bool = False) -> bool:
    """Whether a copy in status ``current`` may move to ``target``; ``by_hand``: a member
    of staff sets it, not circulation."""
    now, then = ItemStatus(current), ItemStatus(target)
    if by_hand and (now in CIRCULATION_STATUSES or then in CIRCULATION_STATUSES):
        return now == then
    return now == then or then in ITEM_MOVES[now]


# Precious and ancient books never leave the building, whatever a rule says (the database
# holds it too). Whether and how the other types are lent, reference books included, is the
# circulation rule matrix's decision; a copy's own `circulates` flag only keeps that one copy
# in (damaged, on exhibition).
STAYS_IN_BUILDING = frozenset({ItemType.PRECIOUS})


def may_leave_building(item_type: str) -> bool:
    """Whether a copy of this type may ever be lent out of the building."""
    return item_type not in STAYS_IN_BUILDING


ITEM_TYPES = frozenset(t.value for t in ItemType)


# --- ISBN and ISSN -----------------------------------------------------------------

_ISBN_CHARS = re.compile(r"[0-9Xx][0-9Xx\- ]{8,16}[0-9Xx]")


def _isbn10_ok(d: str) -> bool:
    if not re.fullmatch(r"\d{9}[\dX]", d):
        return False
    total = sum((10 - i) * (10 if c == "X" else int(c)) for i, c in enumerate(d))
    return total % 11 == 0


def _isbn13_check(d12: str) -> str:
    total = sum(int(c) * (1 if i % 2 == 0 else 3) for i, c in enumerate(d12))
    return str((10 - total % 10) % 10)


def _isbn13_ok(d: str) -> bool:
    return bool(re.fullmatch(r"97[89]\d{10}", d)) and _isbn13_check(d[:12]) == d[12]


def normalise_isbn(text: str) -> str | None:
    """The ISBN-13 of an ISBN written in any usual way ('0-14-044913-X (pbk.)'), or None
    if what is written is not a valid ISBN."""
    m = _ISBN_CHARS.search(text)
    if not m:
        return None
    digits = re.sub(r"[\- ]", "", m.group(0)).upper()
    if len(digits) == 10 and _isbn10_ok(digits):
        body = "978" + digits[:9]
        return body + _isbn13_check(body)
    if len(digits) == 13 and _isbn13_ok(digits):
        return digits
    return None


def issn_ok(text: str) -> bool:
    d = text.replace("-", "").strip().upper()
    if not re.fullmatch(r"\d{7}[\dX]", d):
        return False
    total = sum((8 - i) * int(c) for i, c in enumerate(d[:7]))
    check = (11 - total % 11) % 11
    return d[7] == ("X" if check == 10 else str(check))


# --- what a record says --------------------------------------------------------------

_TRAILING = re.compile(r"[\s/:;,.=]+$")


def _clean(text: str) -> str:
    """ISBD punctuation at the end of a subfield is not part of the value."""
    return _TRAILING.sub("", text.strip())


class _Fields:
    """A record's fields by tag, gathered once: pymarc's get_fields scans every field on
    each call, and reading one record asks for some thirty tags."""

    __slots__ = ("by_tag",)

    def __init__(self, record: Record) -> None:
        by_tag: dict[str, list[Field]] = {}
        for f in record.fields:
            by_tag.setdefault(f.tag, []).append(f)
        self.by_tag = by_tag

    def get(self, tag: str) -> list[Field]:
        return self.by_tag.get(tag, [])

    def data(self, tag: str) -> str:
        """The value of a control field (001, 003, 008), or ''."""
        fs = self.by_tag.get(tag)
        return (fs[0].data or "") if fs else ""


def _sub(fields: _Fields, tag: str, codes: str) -> list[str]:
    out = []
    for f in fields.get(tag):
        parts = [v for c, v in _subfields(f) if c in codes]
        if parts:
            out.append(_clean(" ".join(p.strip() for p in parts)))
    return [o for o in out if o]


def _subfields(f: Field) -> list[tuple[str, str]]:
    return [(s.code, s.value) for s in getattr(f, "subfields", ())]


def _vernacular(fields: _Fields, tag: str, codes: str) -> list[str]:
    """880 fields linked to ``tag`` (subfield 6 '245-02/...'): the title or name in its
    own script, e.g. Chinese characters beside the romanised heading."""
    out = []
    for f in fields.get("880"):
        link = next((v for c, v in _subfields(f) if c == "6"), "")
        if link.startswith(tag):
            parts = [v for c, v in _subfields(f) if c in codes]
            if parts:
                out.append(_clean(" ".join(p.strip() for p in parts)))
    return [o for o in out if o]


@dataclass
class Extracted:
    control_number: str | None
    control_number_source: str | None
    title: str
    title_vernacular: str | None
    responsibility: str | None
    authors: list[str] = field(default_factory=list)  # headings, then their 880 script forms
    authors_vernacular: list[str] = field(default_factory=list)  # those from 880 fields
    subjects: list[str] = field(default_factory=list)
    isbns: list[str] = field(default_factory=list)  # normalised ISBN-13
    invalid_isbns: list[str] = field(default_factory=list)  # kept as written, flagged
    issns: list[str] = field(default_factory=list)
    system_numbers: list[str] = field(default_factory=list)  # 035, e.g. (OCoLC)5853149
    publisher: str | None = None
    year: int | None = None
    language: str | None = None
    edition: str | None = None
    physical_description: str | None = None
    series: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    lcc: str | None = None
    ddc: str | None = None
    clc: str | None = None
    call_number: str | None = None
    holdings: list[Holding] = field(default_factory=list)


@dataclass(frozen=True)
class Holding:
    """A copy described in a holdings field. 852 (MARC21 location): library in $b (our
    code or ISIL; $a when $b is absent), barcode in $p, call number in $h (classification
    part) and $i (item part). 949 (local, as vendors send item data) is read with the same
    letters, plus $t for the item type (docs/adr/0008)."""

    library: str
    barcode: str
    call_number: str | None
    tag: str = "852"
    item_type: str | None = None  # as written in 949 $t; checked when the item is made


def holdings(fields: _Fields) -> list[Holding]:
    out = []
    for tag in ("852", "949"):
        for f in fields.get(tag):
            subs = dict(_subfields(f))
            barcode = (subs.get("p") or "").strip()
            library = (subs.get("b") or subs.get("a") or "").strip()
            if not barcode or not library or len(barcode) > 32:
                continue
            call = " ".join(v.strip() for c, v in _subfields(f) if c in "hi" and v.strip())
            kind = (subs.get("t") or "").strip().lower() or None if tag == "949" else None
            out.append(Holding(library, barcode, call[:120] or None, tag, kind))
    return out


class RecordUnusable(ValueError):
    """A record that parsed but cannot stand in a catalogue (no title, say)."""


def _year(fields: _Fields) -> int | None:
    data = fields.data("008")
    if len(data) >= 11 and data[7:11].isdigit():
        return int(data[7:11])
    for tag in ("264", "260"):
        for value in _sub(fields, tag, "c"):
            m = re.search(r"(1[4-9]\d\d|20\d\d)", value)
            if m:
                return int(m.group(1))
    return None


def _language(fields: _Fields) -> str | None:
    data = fields.data("008")
    code = data[35:38].strip() if len(data) >= 38 else ""
    if re.fullmatch(r"[a-z]{3}", code) and code not in ("zxx", "und", "mul"):
        return code
    for value in _sub(fields, "041", "a"):
        if re.fullmatch(r"[a-z]{3}", value[:3]):
            return value[:3]
    return code or None


def extract(record: Record) -> Extracted:
    """The searchable and displayable fields of a MARC21 bibliographic record."""
    fields = _Fields(record)
    title_parts = _sub(fields, "245", "abnp")
    if not title_parts:
        raise RecordUnusable("no title (245 $a)")
    f001, f003 = fields.data("001").strip(), fields.data("003").strip()
    isbns: list[str] = []
    invalid: list[str] = []
    for f in fields.get("020"):
        for code, value in _subfields(f):
            if code not in ("a", "z"):
                continue
            norm = normalise_isbn(value)
            if code == "a" and norm:
                if norm not in isbns:
                    isbns.append(norm)
            elif code == "a":
                invalid.append(value.strip())
    issns = [v for v in (_clean(x) for x in _sub(fields, "022", "a")) if v]
    clc = next(
        (
            _clean(v)
            for f in fields.get("084")
            for c, v in _subfields(f)
            if c == "a" and any(c2 == "2" and v2.lower() == "clc" for c2, v2 in _subfields(f))
        ),
        None,
    )
    lcc_parts = _sub(fields, "050", "ab")
    ddc = next(iter(_sub(fields, "082", "a")), None)
    authors = _sub(fields, "100", "abcdq") + _sub(fields, "110", "ab") + _sub(fields, "111", "a")
    authors += _sub(fields, "700", "abcdq") + _sub(fields, "710", "ab")
    vernacular = _vernacular(fields, "100", "abcdq") + _vernacular(fields, "700", "abcdq")
    authors += vernacular
    subjects = []
    for tag in ("600", "610", "611", "630", "650", "651"):
        for f in fields.get(tag):
            parts = [v.strip() for c, v in _subfields(f) if c in "abcdvxyz"]
            if parts:
                subjects.append(_clean(" -- ".join(parts)))
    notes = _sub(fields, "500", "a") + _sub(fields, "520", "a") + _sub(fields, "505", "a")
    return Extracted(
        control_number=f001 or None,
        control_number_source=f003 or None,
        title=" ".join(title_parts),
        title_vernacular=next(iter(_vernacular(fields, "245", "abnp")), None),
        responsibility=next(iter(_sub(fields, "245", "c")), None),
        authors=list(dict.fromkeys(authors)),
        authors_vernacular=list(dict.fromkeys(vernacular)),
        subjects=list(dict.fromkeys(subjects)),
        isbns=isbns,
        invalid_isbns=invalid,
        issns=issns,
        system_numbers=[v for v in _sub(fields, "035", "a")],
        publisher=next(iter(_sub(fields, "264", "b") + _sub(fields, "260", "b")), None),
        year=_year(fields),
        language=_language(fields),
        edition=next(iter(_sub(fields, "250", "a")), None),
        physical_description=next(iter(_sub(fields, "300", "abc")), None),
        series=_sub(fields, "490", "a") + _sub(fields, "830", "a"),
        notes=notes,
        lcc=lcc_parts[0] if lcc_parts else None,
        ddc=ddc,
        clc=clc,
        call_number=(lcc_parts[0] if lcc_parts else None) or ddc or clc,
        holdings=holdings(fields),
    )
