"""Call numbers put in shelf order: Library of Congress (LCC), Dewey (DDC) and the Chinese
Library Classification (CLC, 中图法). Pure functions, no I/O.

`shelf_key` turns a call number into a string whose plain byte order is shelf order, so the
database can compare keys (a shelf's range, an item's place) without knowing any scheme. A
key starts with its scheme's letter (`L`, `D`, `C`) and a bar: keys of different schemes never
fall into one another's ranges, which is what a shelf of one scheme means.

What the schemes disagree on, and why each has its own reader:
- LCC reads the class number as a whole number (QA76 before QA100), then an optional decimal
  part; cutters (.L88) are decimal fractions (L88 before L9).
- DDC is a decimal number throughout (005.133 before 005.2), then the book number.
- CLC class numbers are hierarchical decimals read digit by digit (I247 before I3; TP31 before
  TP312), then the auxiliary signs in the order the scheme's shelving rules give
  (- ( = " < : +), then the book number after the slash (I247.5/123 or I247.5/J56).
"""

from __future__ import annotations

import re
from enum import StrEnum

SEP = " "  # sorts before every digit and letter: "QA76" comes before "QA76.73"
HIGH = "\x7f"  # sorts after every character a key holds


class Scheme(StrEnum):
    LCC = "lcc"
    DDC = "ddc"
    CLC = "clc"


_PREFIX = {Scheme.LCC: "L|", Scheme.DDC: "D|", Scheme.CLC: "C|"}

_LCC = re.compile(r"^([A-Z]{1,3})\s*(\d+)?(?:\.(\d+))?(.*)$")
_DDC = re.compile(r"^(\d{1,3})(?:\.(\d+))?(.*)$")
_CLC = re.compile(r"^([A-Z]{1,2})([\d.]*)(.*?)(?:/(.*))?$")
_TOKEN = re.compile(r"[A-Z]+|\d+")
_CLC_SIGNS = {"-": "1", "(": "2", "=": "3", '"': "4", "<": "5", ":": "6", "+": "7"}


def _natural(text: str) -> str:
    """Letters as they are, whole numbers padded so that 9 comes before 10."""
    parts = []
    for token in _TOKEN.findall(text.upper()):
        parts.append(token.zfill(8) if token.isdigit() else token)
    return SEP.join(parts)


def _cutters(text: str) -> str:
    """LCC and DDC book numbers: a letter and digits read as a decimal fraction, then the
    rest (year, volume, copy) in natural order."""
    rest = text.upper().strip(" .")
    parts = []
    while True:
        m = re.match(r"^\.?\s*([A-Z])(\d+)\s*", rest)
        if not m:
            break
        parts.append(m.group(1) + m.group(2))
        rest = rest[m.end() :]
    tail = _natural(rest)
    return SEP.join([*parts, tail] if tail else parts)


def _lcc(cn: str) -> str | None:
    m = _LCC.match(cn)
    if not m or m.group(2) is None:
        return None
    letters, whole, fraction, rest = m.groups()
    key = letters.ljust(3) + whole.lstrip("0").zfill(5)
    if fraction:
        key += "." + fraction
    tail = _cutters(rest)
    return key + (SEP + tail if tail else "")


def _ddc(cn: str) -> str | None:
    m = _DDC.match(cn)
    if not m:
        return None
    whole, fraction, rest = m.groups()
    key = whole.zfill(3) + ("." + fraction if fraction else "")
    tail = _cutters(rest)
    return key + (SEP + tail if tail else "")


def _clc(cn: str) -> str | None:
    m = _CLC.match(cn)
    if not m:
        return None
    letters, digits, signs, book = m.groups()
    # T is divided by a second letter (TP, TN); other classes by digits straight away
    key = letters.ljust(2) + digits.replace(".", "")
    signs = signs.strip()
    i = 0
    while i < len(signs):
        ch = signs[i]
        rank = _CLC_SIGNS.get(ch)
        if rank is None:
            i += 1
            continue
        j = i + 1
        while j < len(signs) and signs[j] not in _CLC_SIGNS and signs[j] not in ')">':
            j += 1
        value = signs[i + 1 : j].replace(".", "")
        key += SEP + rank + value
        i = j + 1 if j < len(signs) and signs[j] in ')">' else j
    if book:
        key += SEP + "/" + _natural(book)
    return key


def detect(call_number: str) -> Scheme:
    """The scheme a call number looks like, when nothing else says."""
    cn = call_number.strip().upper()
    if cn[:1].isdigit():
        return Scheme.DDC
    if "/" in cn or re.match(r"^[A-Z]{1,2}\d[\d.]*[-(=\"<:+]", cn):
        return Scheme.CLC
    return Scheme.LCC


def shelf_key(call_number: str | None, scheme: Scheme | str | None = None) -> str | None:
    """The call number's shelf-order key, or None when it cannot be read in that scheme."""
    if not call_number or not call_number.strip():
        return None
    cn = " ".join(call_number.strip().upper().split())
    chosen = Scheme(scheme) if scheme else detect(cn)
    reader = {Scheme.LCC: _lcc, Scheme.DDC: _ddc, Scheme.CLC: _clc}[chosen]
    key = reader(cn)
    return _PREFIX[chosen] + key if key is not None else None


def scheme_for(
    call_number: str | None, *, lcc: str | None, ddc: str | None, clc: str | None
) -> Scheme | None:
    """The scheme of a copy's call number, from which of its record's classifications it was
    taken (a copy's call number usually starts with one of them)."""
    if not call_number:
        return None
    cn = call_number.strip().upper()
    for scheme, value in ((Scheme.CLC, clc), (Scheme.LCC, lcc), (Scheme.DDC, ddc)):
        if value and cn.startswith(value.strip().upper()[:3]):
            return scheme
    return detect(cn)


def in_range(key: str, first: str, last: str) -> bool:
    """Whether a key falls on a shelf that runs from `first` to `last`, both included; the
    last call number covers everything that extends it (a shelf ending at QA76 holds
    QA76.73.P98)."""
    return first <= key < range_end(last)


def range_end(last: str) -> str:
    """The key just past everything that extends `last`: `key < range_end(last)`."""
    return last + HIGH
