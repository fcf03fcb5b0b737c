"""Staff editing of bibliographic records: a form of the extracted fields, written back into
MARC21 so the record stays one MARC record that imports, exports and indexes like any other.

Only what the cataloguer changed is rewritten: each form field owns a group of MARC fields,
and a group whose value is unchanged keeps its fields exactly as they were (subfield
structure, indicators, linked 880 script fields). A record saved with no change keeps its
bytes. No I/O here: the service stores the result.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING

from biblioverse.catalog import rules
from biblioverse.errors import FieldError
from biblioverse.i18n import N_
from biblioverse.lazy import lazy_module

if TYPE_CHECKING:
    import pymarc
    from pymarc import Field, Record
else:
    pymarc = lazy_module("pymarc")  # with the first edit (see biblioverse.lazy)

LANGUAGE = re.compile(r"[a-z]{3}")


@dataclass
class RecordForm:
    """The fields a cataloguer edits; lists hold one value per line of the form."""

    title: str = ""
    responsibility: str = ""
    authors: list[str] = field(default_factory=list)
    subjects: list[str] = field(default_factory=list)  # "Heading -- subdivision"
    isbns: list[str] = field(default_factory=list)
    publisher: str = ""
    year: int | None = None
    language: str = ""
    edition: str = ""
    physical_description: str = ""
    series: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    lcc: str = ""
    ddc: str = ""
    clc: str = ""

    def errors(self) -> list[FieldError]:
        out = []
        if not self.title.strip():
            out.append(FieldError("title", "required", N_("A title is required.")))
        if len(self.title) > 2000:
            out.append(FieldError("title", "too_long", N_("At most 2,000 characters.")))
        if self.year is not None and not 1000 <= self.year <= 2999:
            out.append(FieldError("year", "out_of_range", N_("A year between 1000 and 2999.")))
        if self.language and not LANGUAGE.fullmatch(self.language):
            out.append(
                FieldError(
                    "language",
                    "invalid",
                    N_("A MARC language code of three letters, such as chi or eng."),
                )
            )
        for name in ("authors", "subjects", "isbns", "series", "notes"):
            if len(getattr(self, name)) > 200:
                out.append(FieldError(name, "too_many", N_("At most 200 lines.")))
        for name in ("lcc", "ddc", "clc"):
            if len(getattr(self, name)) > 120:
                out.append(FieldError(name, "too_long", N_("At most 120 characters.")))
        return out

    def cleaned(self) -> RecordForm:
        """Blank lines dropped, spaces trimmed, the language in lower case."""
        values = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, list):
                v = [" ".join(x.split()) for x in v if x.strip()]
            elif isinstance(v, str):
                v = " ".join(v.split())
            values[f.name] = v
        values["language"] = str(values["language"]).lower()
        return RecordForm(**values)


def form_of(e: rules.Extracted) -> RecordForm:
    """The form as the record stands: what the cataloguer starts from."""
    return RecordForm(
        title=e.title,
        responsibility=e.responsibility or "",
        authors=[a for a in e.authors if a not in e.authors_vernacular],
        subjects=list(e.subjects),
        isbns=list(e.isbns) + list(e.invalid_isbns),
        publisher=e.publisher or "",
        year=e.year,
        language=e.language or "",
        edition=e.edition or "",
        physical_description=e.physical_description or "",
        series=list(e.series),
        notes=list(e.notes),
        lcc=e.lcc or "",
        ddc=e.ddc or "",
        clc=e.clc or "",
    ).cleaned()


def _drop(record: Record, *tags: str) -> None:
    for f in [f for f in record.fields if f.tag in tags]:
        record.remove_field(f)


def _data_field(tag: str, ind: str, pairs: list[tuple[str, str]]) -> Field:
    return pymarc.Field(
        tag, pymarc.Indicators(ind[0], ind[1]), [pymarc.Subfield(c, v) for c, v in pairs if v]
    )


def _set_008(record: Record, *, at: dt.datetime, year: int | None, language: str) -> None:
    """Date entered, date 1 (07-10) and language (35-37) in the fixed-length data field."""
    current = next((f for f in record.fields if f.tag == "008"), None)
    data = list((current.data if current is not None and current.data else "").ljust(40))
    if current is None or not "".join(data[:6]).strip():
        data[0:6] = at.strftime("%y%m%d")
    data[6] = data[6] if data[6].strip() else "s"
    data[7:11] = f"{year:04d}" if year else "    "
    data[35:38] = (language or "   ").ljust(3)[:3]
    value = "".join(data)[:40]
    if current is not None:
        current.data = value
    else:
        record.add_ordered_field(pymarc.Field(tag="008", data=value))


def apply_form(
    record: Record | None,
    before: RecordForm | None,
    form: RecordForm,
    *,
    control_number: str | None,
    organisation: str,
    at: dt.datetime,
) -> Record:
    """The record with the form written into it. ``before`` is the form as the record stood
    (None for a new record): only groups whose value changed are rewritten."""
    new = record is None
    if record is None:
        record = pymarc.Record(leader="00000nam a2200000 i 4500", force_utf8=True)
    record.leader.coding_scheme = "a"  # saved as UTF-8 from now on
    old = before or RecordForm()

    def changed(*names: str) -> bool:
        return new or any(getattr(old, n) != getattr(form, n) for n in names)

    if control_number and (new or not record.get("001")):
        _drop(record, "001", "003")
        record.add_ordered_field(pymarc.Field(tag="001", data=control_number))
        record.add_ordered_field(pymarc.Field(tag="003", data=organisation))
    if changed("year", "language"):
        _set_008(record, at=at, year=form.year, language=form.language)
    if changed("isbns"):
        _drop(record, "020")
        for isbn in form.isbns:
            record.add_ordered_field(_data_field("020", "  ", [("a", isbn)]))
    if changed("lcc"):
        _drop(record, "050")
        if form.lcc:
            record.add_ordered_field(_data_field("050", " 4", [("a", form.lcc)]))
    if changed("ddc"):
        _drop(record, "082")
        if form.ddc:
            record.add_ordered_field(_data_field("082", "04", [("a", form.ddc)]))
    if changed("clc"):
        for f in [f for f in record.fields if f.tag == "084" and "clc" in f.get_subfields("2")]:
            record.remove_field(f)
        if form.clc:
            record.add_ordered_field(_data_field("084", "  ", [("a", form.clc), ("2", "clc")]))
    if changed("authors"):
        _drop(record, "100", "110", "111", "700", "710")
        for i, name in enumerate(form.authors):
            record.add_ordered_field(_data_field("100" if i == 0 else "700", "1 ", [("a", name)]))
    if changed("title", "responsibility"):
        current = next((f for f in record.fields if f.tag == "245"), None)
        ind = (
            "".join(current.indicators or ("0", "0"))
            if current is not None
            else ("1" if form.authors else "0") + "0"
        )
        keep = [s for s in current.subfields if s.code == "6"] if current is not None else []
        _drop(record, "245")
        pairs = [(s.code, s.value) for s in keep] + [("a", form.title)]
        if form.responsibility:
            pairs.append(("c", form.responsibility))
        record.add_ordered_field(_data_field("245", ind, pairs))
    if changed("edition"):
        _drop(record, "250")
        if form.edition:
            record.add_ordered_field(_data_field("250", "  ", [("a", form.edition)]))
    if changed("publisher", "year"):
        _drop(record, "260", "264")
        if form.publisher or form.year:
            pairs = [("b", form.publisher)] + ([("c", str(form.year))] if form.year else [])
            record.add_ordered_field(_data_field("264", " 1", pairs))
    if changed("physical_description"):
        _drop(record, "300")
        if form.physical_description:
            record.add_ordered_field(_data_field("300", "  ", [("a", form.physical_description)]))
    if changed("series"):
        _drop(record, "490", "830")
        for s in form.series:
            record.add_ordered_field(_data_field("490", "0 ", [("a", s)]))
    if changed("notes"):
        _drop(record, "500", "505", "520")
        for n in form.notes:
            record.add_ordered_field(_data_field("500", "  ", [("a", n)]))
    if changed("subjects"):
        _drop(record, "600", "610", "611", "630", "650", "651")
        for heading in form.subjects:
            main, *subdivisions = [p.strip() for p in heading.split(" -- ")]
            pairs = [("a", main)] + [("x", s) for s in subdivisions]
            record.add_ordered_field(_data_field("650", " 0", pairs))
    return record


def stamp_005(record: Record, at: dt.datetime) -> None:
    """005, date and time of the latest transaction."""
    _drop(record, "005")
    record.add_ordered_field(pymarc.Field(tag="005", data=at.strftime("%Y%m%d%H%M%S.0")))
