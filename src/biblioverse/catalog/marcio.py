"""Reading and writing MARC files: ISO 2709 (MARC-8 or UTF-8) and MARCXML, via pymarc.

Each record read comes with its position, so an import can name the bad ones and carry on.
The raw bytes of every ISO 2709 record are kept: a record imported and not edited is
exported byte for byte.
"""

from __future__ import annotations

import contextlib
import io
import logging
import re
import warnings as warnings_module
import xml.sax
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from biblioverse.lazy import lazy_module

if TYPE_CHECKING:
    import pymarc
    from pymarc import marcxml
else:
    # loaded by the first import, export or edit, not by every web worker (see lazy)
    pymarc = lazy_module("pymarc")
    marcxml = lazy_module("pymarc.marcxml")

RECORD_TERMINATOR = 0x1D
# What older systems write after the last record or between records: extra record
# terminators, NULs, the DOS end-of-file mark, blanks and line ends. No leader starts so
# (a leader starts with five digits), so a run of them at a record boundary is padding.
_PADDING = re.compile(rb"[\x1d\x00\x1a \t\r\n]+")


@dataclass
class ReadRecord:
    position: int  # 1-based, in file order
    offset: int | None  # byte offset in an ISO 2709 file
    record: pymarc.Record | None
    raw: bytes | None  # ISO 2709 bytes to store
    utf8: bool
    error: str | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def control_number(self) -> str | None:
        if self.record is not None:
            f = self.record.get("001")
            if f is not None and f.data:
                return str(f.data).strip()
        if self.raw:
            return _control_number_from_raw(self.raw)
        return None


def _control_number_from_raw(raw: bytes) -> str | None:
    """Best effort 001 from a record pymarc refused, so the report can name it."""
    try:
        base = int(raw[12:17])
        directory = raw[24 : base - 1]
        for i in range(0, len(directory) - 11, 12):
            if directory[i : i + 3] == b"001":
                length, start = int(directory[i + 3 : i + 7]), int(directory[i + 7 : i + 12])
                value = raw[base + start : base + start + length].rstrip(b"\x1e")
                return value.decode("utf-8", "replace").strip() or None
    except (ValueError, IndexError):
        return None
    return None


class NotMarc(ValueError):
    """The file is neither ISO 2709 nor MARCXML."""


def sniff(data: bytes) -> str:
    """'xml' or 'iso2709'; raises NotMarc for anything else."""
    head = data[:512].lstrip(b"\xef\xbb\xbf \t\r\n")
    if not head:
        raise NotMarc("the file is empty")
    if head.startswith(b"<"):
        return "xml"
    if len(head) >= 24 and head[:5].isdigit():
        return "iso2709"
    raise NotMarc("the file is neither MARC21 (ISO 2709) nor MARCXML")


def _decode_record(position: int, offset: int, chunk: bytes) -> ReadRecord:
    flag = chr(chunk[9]) if len(chunk) > 9 else " "
    warnings: list[str] = []
    utf8 = flag == "a"
    if utf8:
        try:
            chunk.decode("utf-8")
        except UnicodeDecodeError as exc:
            return ReadRecord(
                position,
                offset,
                None,
                chunk,
                True,
                error=f"leader/09 says UTF-8 but byte {exc.start} is not UTF-8",
            )
    elif any(b > 0x7F for b in chunk):
        # Leader/09 says MARC-8. Check it: bytes that are valid, non-ASCII UTF-8 are almost
        # never MARC-8, and reading them as MARC-8 would garble every accented letter.
        try:
            chunk.decode("utf-8")
            utf8 = True
            warnings.append("leader/09 says MARC-8 but the record is UTF-8; read as UTF-8")
        except UnicodeDecodeError:
            pass
    with _PymarcComplaints() as complaints:
        try:
            record = pymarc.Record(
                data=chunk, to_unicode=True, force_utf8=utf8, utf8_handling="strict"
            )
        except Exception as exc:  # pymarc signals each kind of damage with its own class
            reason = str(exc) or type(exc).__name__
            return ReadRecord(position, offset, None, chunk, utf8, error=reason, warnings=warnings)
    if complaints.marc8:
        # pymarc replaces what it cannot read with blanks: the record would be stored garbled.
        return ReadRecord(
            position,
            offset,
            None,
            chunk,
            utf8,
            error=f"MARC-8 text that cannot be read: {complaints.marc8[0]}",
            warnings=warnings,
        )
    warnings += complaints.other
    return ReadRecord(position, offset, record, chunk, utf8, warnings=warnings)


class _PymarcComplaints(logging.Handler):
    """Collects what pymarc says about one record instead of letting it print: MARC-8
    characters it could not map (on stderr), odd indicators (its logger) and odd subfield
    codes (Python warnings). Imports run in one thread; the stderr capture is process-wide."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.marc8: list[str] = []
        self.other: list[str] = []
        self._stderr = io.StringIO()

    def emit(self, record: logging.LogRecord) -> None:
        self.other.append(record.getMessage()[:200])

    def __enter__(self) -> _PymarcComplaints:
        self._logger = logging.getLogger("pymarc")
        self._logger.addHandler(self)
        self._propagate, self._logger.propagate = self._logger.propagate, False
        self._warnings = warnings_module.catch_warnings(record=True)
        self._caught = self._warnings.__enter__()
        warnings_module.simplefilter("always")
        self._redirect = contextlib.redirect_stderr(self._stderr)
        self._redirect.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._redirect.__exit__(None, None, None)
        self._warnings.__exit__(None, None, None)
        self._logger.removeHandler(self)
        self._logger.propagate = self._propagate
        self.marc8 += [line for line in self._stderr.getvalue().splitlines() if line.strip()]
        self.other += [str(w.message)[:200] for w in self._caught]


@dataclass(frozen=True)
class Piece:
    """One record's bytes cut from an ISO 2709 file, or why they could not be cut."""

    position: int  # of a padding run: the record before it (0 at the start of the file)
    offset: int
    chunk: bytes
    error: str | None = None
    padding: bool = False  # bytes between or after records, not a record


def split_iso2709(data: bytes) -> Iterator[Piece]:
    """Split on the record length in each leader; resynchronise on the record terminator
    after a damaged record so one bad record does not lose the rest of the file. A run of
    padding where a record would start is one piece of its own, marked ``padding``."""
    offset, position, size = 0, 0, len(data)
    while offset < size:
        if run := _PADDING.match(data, offset):
            yield Piece(position, offset, run.group(0), padding=True)
            offset = run.end()
            continue
        length_text = data[offset : offset + 5]
        position += 1
        length = int(length_text) if length_text.isdigit() else 0
        problem = None
        if not length_text.isdigit():
            problem = f"no record length at byte {offset} (found {length_text!r})"
        elif length < 25:
            problem = f"record length {length} is shorter than a leader"
        elif offset + length > size:
            yield Piece(
                position,
                offset,
                data[offset:],
                f"truncated: the record needs {length} bytes, the file has {size - offset} left",
            )
            return
        elif data[offset + length - 1] != RECORD_TERMINATOR:
            problem = "the record length does not end at a record terminator"
        if problem:
            # Skip to the next record terminator and carry on from there.
            nxt = data.find(bytes([RECORD_TERMINATOR]), offset)
            end = size if nxt < 0 else nxt + 1
            yield Piece(position, offset, data[offset:end], problem)
            offset = end
            continue
        yield Piece(position, offset, data[offset : offset + length])
        offset += length


def read_piece(piece: Piece) -> ReadRecord:
    if piece.error:
        return ReadRecord(piece.position, piece.offset, None, piece.chunk, False, piece.error)
    return _decode_record(piece.position, piece.offset, piece.chunk)


def read_iso2709(data: bytes) -> Iterator[ReadRecord]:
    """Every record of an ISO 2709 file, read, in file order (padding left out)."""
    for piece in split_iso2709(data):
        if not piece.padding:
            yield read_piece(piece)


def read_marcxml(data: bytes) -> tuple[list[ReadRecord], str | None]:
    """All records of a MARCXML file, and the XML error that stopped the reading, if any
    (records before the error are kept)."""
    handler = marcxml.XmlHandler(strict=False, normalize_form=None)  # keeps what it reads
    error = None
    try:
        marcxml.parse_xml(io.BytesIO(data), handler)
    except xml.sax.SAXParseException as exc:
        error = (
            f"XML error at line {exc.getLineNumber()}, column {exc.getColumnNumber()}: "
            f"{exc.getMessage()}"
        )
    except Exception as exc:
        error = f"cannot read the XML: {exc}"
    out = []
    for i, record in enumerate(handler.records, start=1):
        try:
            record.leader.coding_scheme = "a"  # MARCXML is Unicode
            raw = record.as_marc()
            out.append(ReadRecord(i, None, record, raw, True))
        except Exception as exc:
            out.append(ReadRecord(i, None, None, None, True, error=f"cannot encode: {exc}"))
    return out, error


def to_record(raw: bytes, utf8: bool) -> pymarc.Record:
    return pymarc.Record(data=raw, to_unicode=True, force_utf8=utf8, utf8_handling="replace")


def marcxml_collection(records: list[pymarc.Record]) -> bytes:
    out = io.BytesIO()
    out.write(b'<?xml version="1.0" encoding="UTF-8"?>\n')
    out.write(b'<collection xmlns="http://www.loc.gov/MARC21/slim">\n')
    for record in records:
        record.leader.coding_scheme = "a"
        out.write(pymarc.record_to_xml(record, namespace=False))
        out.write(b"\n")
    out.write(b"</collection>\n")
    return out.getvalue()
