"""Indexing: the search index's documents, as the event subscribers and the rebuild write
them, and the event that asks for an availability refresh."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session, sessionmaker

from biblioverse import libraries
from biblioverse.catalog import rules
from biblioverse.catalog.models import Item, Record
from biblioverse.catalog.search import SearchDoc, SearchIndex
from biblioverse.events import declare, process_local
from biblioverse.events import record as record_event

DOC_COLUMNS = (
    "id",
    "title",
    "title_vernacular",
    "authors",
    "subjects",
    "notes",
    "isbns",
    "issns",
    "call_number",
    "lcc",
    "ddc",
    "clc",
    "language",
    "year",
)


def search_doc(
    row: Mapping[Any, Any],
    copies: Mapping[tuple[int, str], Sequence[int] | int],
    codes: Mapping[int, str],
) -> SearchDoc:
    """A record's search document from its stored columns (``DOC_COLUMNS``) and its copies:
    (library, item type) -> [total, available], or a count when all are available."""
    per_unit: dict[int, list[int]] = {}
    types: set[str] = set()
    for (unit_id, item_type), n in copies.items():
        total, available = (n, n) if isinstance(n, int) else (n[0], n[1])
        counts = per_unit.setdefault(unit_id, [0, 0])
        counts[0] += total
        counts[1] += available
        types.add(item_type)
    call_numbers = [row[c] for c in ("call_number", "lcc", "ddc", "clc") if row[c]]
    return SearchDoc(
        record_id=row["id"],
        title=row["title"],
        title_vernacular=row["title_vernacular"],
        authors=list(row["authors"]),
        subjects=list(row["subjects"]),
        notes=list(row["notes"]),
        isbns=list(row["isbns"]),
        issns=list(row["issns"] or []),
        call_number=row["call_number"],
        call_numbers=list(dict.fromkeys(call_numbers)),
        libraries=[codes.get(uid, "?") for uid in per_unit],
        item_types=sorted(types),
        holdings=[(uid, t, a) for uid, (t, a) in per_unit.items()],
        available=any(a for _t, a in per_unit.values()),
        language=row["language"],
        year=row["year"],
    )


# Built once: the relay asks after every loan and return.
_DOC_ROWS = (
    select(*(getattr(Record, c) for c in DOC_COLUMNS))
    .where(Record.id.in_(bindparam("ids", expanding=True)))
    .order_by(Record.id)
)
_DOC_COPIES = select(Item.record_id, Item.org_unit_id, Item.item_type, Item.status).where(
    Item.record_id.in_(bindparam("ids", expanding=True))
)


def search_docs(session: Session, record_ids: Sequence[int]) -> list[SearchDoc]:
    """What the search index needs of these records: text, holdings and availability."""
    if not record_ids:
        return []
    rows = session.execute(_DOC_ROWS, {"ids": list(record_ids)})
    copies: dict[int, dict[tuple[int, str], list[int]]] = {}
    for record_id, unit_id, item_type, status in session.execute(
        _DOC_COPIES, {"ids": list(record_ids)}
    ):
        counts = copies.setdefault(record_id, {}).setdefault((unit_id, item_type), [0, 0])
        counts[0] += 1
        counts[1] += status == rules.ItemStatus.AVAILABLE.value
    codes = {u.id: u.code for u in libraries.unit_names(session).values()} if copies else {}
    return [search_doc(r._mapping, copies.get(r.id, {}), codes) for r in rows]


def _docs_of(
    session: Session,
    record_ids: Sequence[int],
    batch: int,
    progress: Callable[[int, int], None] | None = None,
) -> Iterator[SearchDoc]:
    """Search documents of many records, read a batch at a time (an IN list of 250,000
    ids is more than a database takes in one statement)."""
    for start in range(0, len(record_ids), batch):
        chunk = record_ids[start : start + batch]
        yield from search_docs(session, chunk)
        if progress:
            progress(start + len(chunk), len(record_ids))


def rebuild_index(
    session: Session,
    index: SearchIndex,
    *,
    batch: int = 2000,
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """Index every record again from the database (the index is derived data): one writer
    and one commit, so readers see the old index until the new one is whole."""
    ids = list(session.scalars(select(Record.id).order_by(Record.id)))
    return index.rebuild(_docs_of(session, ids, batch, progress))


def reindex_records(
    session: Session, index: SearchIndex, record_ids: Sequence[int], *, batch: int = 2000
) -> None:
    """After a commit: refresh these records in the index, dropping those now gone."""
    present: set[int] = set()

    def docs() -> Iterator[SearchDoc]:
        for d in _docs_of(session, sorted(set(record_ids)), batch):
            present.add(d.record_id)
            yield d

    index.upsert(docs())
    gone = [rid for rid in record_ids if rid not in present]
    if gone:
        index.delete(gone)


def availability_changed(session: Session, record_ids: list[int], at: dt.datetime) -> None:
    """A copy was lent, returned, set aside or sent: search shows availability from the
    index, refreshed by the relay a moment after the commit (not urgent)."""
    record_event(
        session, "catalog.records.changed", {"record_ids": record_ids}, at=at, urgent=False
    )


def merge_record_changes(payloads: list[dict[str, Any]]) -> dict[str, Any]:
    """Many "records changed" events as one: every record some event wants refreshed."""
    wanted: set[int] = set()
    for p in payloads:
        done = set(p.get("indexed_ids", ()))
        wanted.update(r for r in p.get("record_ids", ()) if r not in done)
    return {"record_ids": sorted(wanted)}


def reindexer(
    factory: sessionmaker[Session], index_of: Callable[[], SearchIndex]
) -> Callable[[str, dict[str, Any]], None]:
    """An event handler that refreshes the records an event names, in its own session."""

    def handle(topic: str, payload: dict[str, Any]) -> None:
        done = set(payload.get("indexed_ids", ()))  # staged by the import that made them
        wanted = [rid for rid in payload.get("record_ids", []) if rid not in done]
        if wanted:
            with factory() as session:
                reindex_records(session, index_of(), wanted)

    return handle


RECORDS_CHANGED = "catalog.records.changed"
# Records an import already put in its own process's index: other nodes refresh them
process_local("indexed_ids")


def subscribers(
    read_factory: sessionmaker[Session], index_of: Callable[[], SearchIndex]
) -> tuple[dict[str, list[Callable[[str, dict[str, Any]], None]]], dict[str, Any]]:
    """What a process publishing catalogue events wires up: the search index refreshes the
    records events name (read-only sessions: on SQLite the publisher holds the write lock),
    and many such events are merged into one refresh."""
    return (
        # each node refreshes its own index (ADR 0034)
        {RECORDS_CHANGED: [declare(reindexer(read_factory, index_of), "node")]},
        {RECORDS_CHANGED: merge_record_changes},
    )
