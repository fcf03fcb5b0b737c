"""Union-catalogue search behind a small interface; tantivy (BM25, facets) by default.

The index is derived data: built from the database by `biblioverse index rebuild` and kept
fresh after commits from catalogue events. It is never consulted for a circulation decision.
Chinese text is segmented with jieba (rjieba: the jieba-rs port, same dictionary and algorithm,
loaded in milliseconds) before tantivy's tokenizer sees it, so a Chinese title is found by its
words, not only by the whole run of characters.
"""

from __future__ import annotations

import difflib
import itertools
import re
import shutil
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import orjson
import rjieba
import tantivy

from biblioverse.catalog.rules import issn_ok, normalise_isbn

FACETS = ("library", "item_type", "language", "subject", "decade", "availability")
# Counted unless a caller asks otherwise. Subjects run to tens of thousands of values and
# counting them was most of a broad search's time, so they are counted when asked for: the
# page loads them when a reader opens them.
DEFAULT_FACETS = ("library", "item_type", "language", "decade", "availability")
SORTS = ("relevance", "year_desc", "year_asc", "title")
# Fields a reader may name in a query ("title:hamlet"), and how much a match in each counts.
BOOSTS = {
    "title": 4.0,
    "author": 2.5,
    "subject": 1.5,
    "notes": 0.5,
    "isbn": 4.0,
    "callnumber": 2.0,
}

# A writer busy in another process (the other server worker) is waited for this many times,
# 20 ms longer each time: about 4 s in all, far above one commit.
WRITER_ATTEMPTS = 20
# Adjacent word pairs of subject headings, each one term: a two-word phrase such as "united
# states" then reads one posting list in subjects instead of checking the positions of two
# words that stand in most headings (most of such a phrase's time). The
# "common grams" idea of large library catalogues; other fields are short and keep their
# positions.
SUBJECT_PAIRS = "subject_pairs"
PARSE_BOOSTS = {**BOOSTS, SUBJECT_PAIRS: BOOSTS["subject"]}
_TOKEN = re.compile(r"[^\W_]+")  # tantivy's default tokenizer: runs of letters and digits
_PHRASE = re.compile(r'(^|[\s(+\-])"([^"]*)"(?=$|[\s)])')


def word_pairs(text: str) -> list[str]:
    """Each two adjacent words, as tantivy's default tokenizer cuts and lowercases them."""
    words = [w.lower() for w in _TOKEN.findall(text) if len(w) < 40]
    return [f"{a} {b}" for a, b in itertools.pairwise(words)]


def two_word_phrases(query: str) -> str:
    """A query with each unfielded two-word phrase asked of the word pairs in subjects and
    of the positions in the other default fields; ranking keeps the same field boosts."""

    def rewrite(m: re.Match[str]) -> str:
        lead, phrase = m.group(1), m.group(2)
        pairs = word_pairs(phrase)
        if len(pairs) != 1 or _CJK_RUN.search(phrase):
            return m.group(0)
        escaped = phrase.replace("\\", " ")
        fields = [f'{name}:"{escaped}"' for name in BOOSTS if name != "subject"]
        fields.append(f'{SUBJECT_PAIRS}:"{pairs[0]}"')
        return lead + "(" + " OR ".join(fields) + ")"

    return _PHRASE.sub(rewrite, query)


_CJK_RUN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")
_WORD = re.compile(r"\w+", re.UNICODE)


def segment(text: str) -> str:
    """Spaces between Chinese words ('红楼梦研究' -> '红楼 红楼梦 研究'); other text as is."""
    if not _CJK_RUN.search(text):
        return text
    return _CJK_RUN.sub(lambda m: " " + " ".join(rjieba.cut_for_search(m.group(0))) + " ", text)


@dataclass
class SearchDoc:
    """What the index knows of a record: text to search, values to filter and count, and
    the card a result list shows (so a search needs no database round trip)."""

    record_id: int
    title: str
    title_vernacular: str | None = None  # the title in its own script (880)
    authors: list[str] = field(default_factory=list)
    subjects: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    isbns: list[str] = field(default_factory=list)
    issns: list[str] = field(default_factory=list)
    call_number: str | None = None
    call_numbers: list[str] = field(default_factory=list)  # every classification, searchable
    libraries: list[str] = field(default_factory=list)  # codes of the libraries holding it
    item_types: list[str] = field(default_factory=list)
    holdings: list[tuple[int, int, int]] = field(default_factory=list)  # unit, total, available
    available: bool = False
    language: str | None = None
    year: int | None = None

    @property
    def full_title(self) -> str:
        return self.title + (f" {self.title_vernacular}" if self.title_vernacular else "")


@dataclass
class SearchQuery:
    text: str = ""
    filters: dict[str, list[str]] = field(default_factory=dict)
    sort: str = "relevance"
    offset: int = 0
    limit: int = 20
    facets: tuple[str, ...] = DEFAULT_FACETS


@dataclass
class Hit:
    record_id: int
    score: float
    title_html: str  # escaped, with <b> around the matched words: the title in its own
    # script (880) when the record has one, else the title
    card: dict[str, Any] = field(default_factory=dict)  # as stored at indexing: see _card
    # The romanised title under a title in its own script (pinyin under Chinese), marked.
    title_secondary_html: str | None = None


@dataclass
class SearchPage:
    total: int
    hits: list[Hit]
    facets: dict[str, list[tuple[str, int]]]
    fell_back: bool = False  # the query did not parse and was searched as plain words
    did_you_mean: str | None = None


class IndexStaging(Protocol):
    """Documents written to the index but not yet visible: the caller commits them once the
    database has committed the records they describe."""

    def add(self, docs: Iterable[SearchDoc]) -> None: ...
    def commit(self) -> None: ...


class SearchIndex(Protocol):
    def staged(self) -> AbstractContextManager[IndexStaging]: ...
    def upsert(self, docs: Iterable[SearchDoc]) -> int: ...
    def rebuild(self, docs: Iterable[SearchDoc]) -> int: ...
    def delete(self, record_ids: Sequence[int]) -> None: ...
    def search(self, query: SearchQuery) -> SearchPage: ...
    def suggest(self, prefix: str, limit: int = 8) -> list[str]: ...
    def matching_ids(self, query: SearchQuery, limit: int) -> list[int]: ...


def _facet_field(name: str) -> str:
    return f"f_{name}"


# Facets kept as numbers: a numeric column is counted faster than a text one. A decade is its
# first year (1990 for "1990s"), availability 1 or 0, a MARC language code its three
# letters in base 26 ("eng" 3,048); a language that is no such code is not counted.
NUMERIC_FACETS = ("language", "decade", "availability")
_DECADE = re.compile(r"(\d{1,3}0)s")
_LANGUAGE = re.compile(r"[a-z]{3}")


def facet_number(name: str, value: str) -> int | None:
    """The number a numeric facet stores for a value as readers see it; None if none."""
    if name == "decade":
        m = _DECADE.fullmatch(value)
        return int(m.group(1)) if m else None
    if name == "language":
        if not _LANGUAGE.fullmatch(value):
            return None
        return int(sum((ord(c) - 97) * 26**i for i, c in enumerate(reversed(value))))
    return {"available": 1, "not_available": 0}.get(value)


def facet_value(name: str, number: float) -> str:
    if name == "decade":
        return f"{int(number)}s"
    if name == "language":
        n = int(number)
        return "".join(chr(97 + n // 26**i % 26) for i in (2, 1, 0))
    return "available" if number else "not_available"


def _schema() -> tantivy.Schema:
    b = tantivy.SchemaBuilder()
    b.add_unsigned_field("id", stored=True, indexed=True, fast=True)
    b.add_text_field("title", stored=False, tokenizer_name="default")
    for name in ("author", "subject", "notes", "callnumber", "suggest"):
        b.add_text_field(name, stored=False, tokenizer_name="default")
    # Identifiers as exact terms: the ISBN-13 whichever form was catalogued, the ISSN
    # without its hyphen. Adding the issn field changed the schema, so an index written
    # before is refused (IndexOutdated) and rebuilt by the commands that replace it.
    b.add_text_field("isbn", stored=False, tokenizer_name="raw")
    b.add_text_field("issn", stored=False, tokenizer_name="raw")
    b.add_text_field(SUBJECT_PAIRS, stored=False, tokenizer_name="raw", index_option="freq")
    for name in FACETS:
        if name in NUMERIC_FACETS:
            b.add_integer_field(_facet_field(name), stored=False, indexed=True, fast=True)
        else:
            b.add_text_field(_facet_field(name), stored=False, tokenizer_name="raw", fast=True)
    b.add_integer_field("year", stored=False, indexed=True, fast=True)
    b.add_text_field("title_sort", stored=False, tokenizer_name="raw", fast=True)
    b.add_bytes_field("card", stored=True, indexed=False, fast=False)
    return b.build()


def _card(d: SearchDoc) -> bytes:
    """What a result list shows of a record, stored in the index as JSON."""
    return orjson.dumps(
        {
            "title": d.title,
            "title_vernacular": d.title_vernacular,
            "authors": d.authors[:10],
            "year": d.year,
            "language": d.language,
            "call_number": d.call_number,
            "holdings": d.holdings,
        }
    )


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


_SYNTAX = re.compile(r'[+\-&|!(){}\[\]^"~*?:\\/]')


def plain_words(text: str) -> str:
    """A query stripped of query syntax, for spelling suggestions."""
    return " ".join(_SYNTAX.sub(" ", text).split())


# Marks people type inside names and words (O'Reilly, children's, `code`, <b>) that tantivy
# reads as a single-quoted phrase or a range; escaped, they are text. A range after a field
# name ("year:>1990") is left as syntax.
_WORD_MARKS = re.compile(r"['`]|(?<!:)[<>]")


def readable(text: str) -> str:
    """A reader's query with the marks tantivy would misread as syntax escaped."""
    return _WORD_MARKS.sub(lambda m: "\\" + m.group(0), text)


def quoted(text: str) -> str:
    """Text as one double-quoted phrase of the query language, whatever it holds."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def fielded_phrase(name: str, text: str) -> str:
    """A query for ``text`` as a phrase in field ``name`` (the links of a record page)."""
    return f"{name}:{quoted(text)}"


def literal_words(text: str) -> str:
    """The query searched when a reader's syntax does not parse: each word as typed, quoted,
    so that no operator, bracket or quote in it is syntax; a known field's prefix is kept
    ("author:(tabb" asks for tabb in authors). Words with no letter or digit are dropped."""
    out = []
    for word in text.split():
        name, colon, rest = word.partition(":")
        prefix = f"{name}:" if colon and name in BOOSTS and rest else ""
        if prefix:
            word = rest
        if _TOKEN.search(word):
            out.append(prefix + quoted(word))
    return " ".join(out)


def issn_term(text: str) -> str:
    """An ISSN as the index holds it: no hyphen or spaces, a check X in capitals."""
    return re.sub(r"[\s\-]", "", text).upper()


_IDENTIFIER = re.compile(r"(?:(isbn|issn)\s*:?\s*)?(\d[\d\- ]*[\dX])", re.IGNORECASE)


def identifier_term(text: str) -> tuple[str, str] | None:
    """The field and exact term of a query that is only an ISBN or an ISSN, written in any
    usual way ("0-14-044913-2", "978 0 14 044913 6", "isbn:0140449132", "0317-8471"):
    an ISBN-10 becomes the ISBN-13 the index holds. None for any other query, and for
    numbers whose check digit is wrong (they are searched as words)."""
    m = _IDENTIFIER.fullmatch(text.strip())
    if not m:
        return None
    kind = (m.group(1) or "").lower()
    digits = re.sub(r"[\s\-]", "", m.group(2)).upper()
    if kind != "issn" and len(digits) in (10, 13) and (isbn := normalise_isbn(digits)):
        return "isbn", isbn
    if kind != "isbn" and len(digits) == 8 and issn_ok(digits):
        return "issn", digits
    return None


class IndexOutdated(RuntimeError):
    def __init__(self, path: Path) -> None:
        super().__init__(
            f"the search index in {path} was written by another version of Biblioverse: "
            "run `biblioverse index rebuild` (or `biblioverse db upgrade`)"
        )


class TantivyIndex:
    """A tantivy index in a folder. Searches reload the reader when a writer committed;
    writes go through one writer at a time (tantivy's own lock across processes)."""

    def __init__(
        self,
        path: Path,
        *,
        heap_bytes: int = 128_000_000,
        writer_threads: int = 1,
        replace_outdated: bool = False,
    ) -> None:
        """``replace_outdated``: an index written by another version (another schema) is
        started again empty, for the commands that then rebuild it; otherwise it raises
        IndexOutdated, so a server never deletes an index another process is reading."""
        self.path = path
        path.mkdir(parents=True, exist_ok=True)
        self.schema = _schema()
        self.replaced = False
        try:
            self.index = tantivy.Index(self.schema, path=str(path), reuse=True)
        except ValueError as exc:
            if not replace_outdated:
                raise IndexOutdated(path) from exc
            shutil.rmtree(path)
            path.mkdir(parents=True)
            self.index = tantivy.Index(self.schema, path=str(path), reuse=True)
            self.replaced = True
        self.heap_bytes = heap_bytes
        self.writer_threads = writer_threads
        self._lock = threading.Lock()

    @classmethod
    def recreate(cls, path: Path) -> TantivyIndex:
        if path.exists():
            shutil.rmtree(path)
        return cls(path)

    # --- writing ---------------------------------------------------------------------

    def _doc(self, d: SearchDoc) -> tantivy.Document:
        doc = tantivy.Document()
        doc.add_unsigned("id", d.record_id)
        title = d.full_title
        doc.add_text("title", segment(title))
        doc.add_text("suggest", title)
        for a in d.authors:
            doc.add_text("author", segment(a))
        for s in d.subjects:
            text = segment(s)
            doc.add_text("subject", text)
            for pair in word_pairs(text):
                doc.add_text(SUBJECT_PAIRS, pair)
        for n in d.notes:
            doc.add_text("notes", segment(n))
        for i in d.isbns:
            doc.add_text("isbn", normalise_isbn(i) or i)
        for i in d.issns:
            doc.add_text("issn", issn_term(i))
        for c in d.call_numbers:
            doc.add_text("callnumber", c)
        facets = {
            "library": list(dict.fromkeys(d.libraries)),
            "item_type": list(dict.fromkeys(d.item_types)),
            "language": [d.language] if d.language else [],
            "subject": list(dict.fromkeys(s.split(" -- ")[0] for s in d.subjects))[:5],
            "decade": [f"{d.year // 10 * 10}s"] if d.year else [],
            "availability": ["available" if d.available else "not_available"],
        }
        for name, values in facets.items():
            for value in values:
                if name in NUMERIC_FACETS:
                    number = facet_number(name, value)
                    if number is not None:
                        doc.add_integer(_facet_field(name), number)
                else:
                    doc.add_text(_facet_field(name), value)
        doc.add_integer("year", d.year or 0)
        doc.add_text("title_sort", title.lower()[:100])
        doc.add_bytes("card", _card(d))
        return doc

    def upsert(self, docs: Iterable[SearchDoc]) -> int:
        """Add or replace documents; one commit at the end, so a search sees all or none."""
        return self._write(docs, replace_all=False)

    def rebuild(self, docs: Iterable[SearchDoc]) -> int:
        """Replace the whole index with ``docs`` in one commit: searches go on meeting the
        old index until the new one is complete."""
        return self._write(docs, replace_all=True)

    @contextmanager
    def staged(self) -> Iterator[_TantivyStaging]:
        """A writer held for a long import: documents added as records are stored, made
        visible by ``commit()`` after the database commit, dropped if that never comes."""
        with self._lock:
            writer = self.index.writer(self.heap_bytes, self.writer_threads)
            staging = _TantivyStaging(self, writer)
            try:
                yield staging
                if not staging.committed:
                    writer.rollback()
            except BaseException:
                writer.rollback()
                raise
            finally:
                writer.wait_merging_threads()  # also lets go of the index lock
        if staging.committed:
            self.index.reload()

    def _id_query(self, record_id: int) -> tantivy.Query:
        # By query, not delete_documents_by_term: with an unsigned field that call matched
        # nothing (tantivy-py 0.27), and every reindex left the old document beside the new.
        return tantivy.Query.term_query(self.schema, "id", record_id)

    def _writer(self) -> tantivy.IndexWriter:
        """The index's one writer. Another process (a second server worker) may hold it for
        its commit: wait for it a little rather than lose this update."""
        attempt = 0
        while True:
            try:
                return self.index.writer(self.heap_bytes, self.writer_threads)
            except ValueError as exc:
                attempt += 1
                if "LockBusy" not in str(exc) or attempt == WRITER_ATTEMPTS:
                    raise
                time.sleep(0.02 * attempt)

    def _write(self, docs: Iterable[SearchDoc], *, replace_all: bool) -> int:
        with self._lock:
            writer = self._writer()
            try:
                if replace_all:
                    writer.delete_all_documents()
                n = 0
                for d in docs:
                    if not replace_all:
                        writer.delete_documents_by_query(self._id_query(d.record_id))
                    writer.add_document(self._doc(d))
                    n += 1
                writer.commit()
            except BaseException:
                writer.rollback()  # nothing half-written; the old index stays as it was
                raise
            finally:
                writer.wait_merging_threads()  # also lets go of the index lock
        self.index.reload()
        return n

    def delete(self, record_ids: Sequence[int]) -> None:
        with self._lock:
            writer = self._writer()
            for rid in record_ids:
                writer.delete_documents_by_query(self._id_query(rid))
            writer.commit()
            writer.wait_merging_threads()
        self.index.reload()

    # --- reading ---------------------------------------------------------------------

    def _query(self, text: str) -> tantivy.Query:
        return self.index.parse_query(
            text, list(BOOSTS), field_boosts=PARSE_BOOSTS, conjunction_by_default=True
        )

    def _parse(self, text: str) -> tuple[tantivy.Query, bool]:
        """The query a reader typed, and whether it was searched as plain words. Never
        raises: what the grammar refuses is searched word by word. An ISBN or ISSN matches
        that identifier exactly, however it was typed."""
        identifier = identifier_term(text)
        if identifier:
            return tantivy.Query.term_query(self.schema, *identifier), False
        segmented = segment(text)
        written = two_word_phrases(readable(segmented))
        try:
            return self._query(written), False
        except ValueError as exc:
            # "-history" or "NOT history": everything but history (tantivy refuses a query
            # of exclusions alone, and "*" is every record).
            if "excluding" in str(exc):
                try:
                    return self._query(f"* {written}"), False
                except ValueError:
                    pass
        return self._words(text), True

    def _words(self, text: str) -> tantivy.Query:
        """The reader's words as typed, none of them syntax."""
        words = literal_words(segment(text))
        try:
            return self._query(words) if words else tantivy.Query.empty_query()
        except ValueError:  # quoted words always parse; this is the last guard
            return tantivy.Query.empty_query()

    def _filtered(self, base: tantivy.Query, filters: dict[str, list[str]]) -> tantivy.Query:
        clauses = [(tantivy.Occur.Must, base)]
        for name, values in filters.items():
            if name not in FACETS or not values:
                continue
            terms: list[str | int] = list(values)
            if name in NUMERIC_FACETS:
                terms = [n for v in values if (n := facet_number(name, v)) is not None]
            if not terms:  # only values no record can have
                clauses.append((tantivy.Occur.Must, tantivy.Query.empty_query()))
                continue
            any_of = [
                (tantivy.Occur.Should, tantivy.Query.term_query(self.schema, _facet_field(name), t))
                for t in terms
            ]
            clauses.append((tantivy.Occur.Must, tantivy.Query.boolean_query(any_of)))
        return tantivy.Query.boolean_query(clauses) if len(clauses) > 1 else base

    def search(self, query: SearchQuery) -> SearchPage:
        searcher = self.index.searcher()
        text = query.text.strip()
        fell_back = False
        if text:
            base, fell_back = self._parse(text)
        else:
            base = tantivy.Query.all_query()
        try:
            return self._page(searcher, query, text, base, fell_back)
        except ValueError:
            # Some queries parse and fail only when run ("title:*" asks a column that
            # field does not have): searched as words like those that do not parse.
            if fell_back:
                raise
            return self._page(searcher, query, text, self._words(text), True)

    def _page(
        self,
        searcher: tantivy.Searcher,
        query: SearchQuery,
        text: str,
        base: tantivy.Query,
        fell_back: bool,
    ) -> SearchPage:
        q = self._filtered(base, query.filters)
        order_by, order = {
            "year_desc": ("year", tantivy.Order.Desc),
            "year_asc": ("year", tantivy.Order.Asc),
            "title": ("title_sort", tantivy.Order.Asc),
        }.get(query.sort, (None, tantivy.Order.Desc))
        # Every document has one availability value, so when availability is counted its
        # buckets add up to the total and the ranking need not count the hits again.
        counted = "availability" in query.facets
        result = searcher.search(
            q,
            limit=max(1, query.limit),  # tantivy panics on a limit of 0
            count=not counted,
            offset=query.offset,
            order_by_field=order_by,
            order=order,
        )
        marker = title_marker(text)
        hits = []
        for score, address in result.hits:
            doc = searcher.doc(address)
            stored = doc.get_first("card")
            card = orjson.loads(stored) if isinstance(stored, bytes) else {}
            title, vernacular = card.get("title", ""), card.get("title_vernacular")
            score_value = float(score) if isinstance(score, float) else 0.0
            record_id = int(doc.get_first("id") or 0)
            if vernacular:  # the title in its own script leads, the romanised one follows
                hits.append(Hit(record_id, score_value, marker(vernacular), card, marker(title)))
            else:
                hits.append(Hit(record_id, score_value, marker(title), card))
        # The facets are counted here, after the ranking, not beside it in a second thread:
        # the thread made a lone search faster but cost more CPU a search, and with many
        # clients on few cores it is CPU that sets the waiting (docs/benchmarks.md).
        facets = self._facet_counts(searcher, q, query.facets) if query.facets else {}
        if counted:
            total = sum(n for _v, n in facets.get("availability", []))
        else:
            total = int(getattr(result, "count", 0) or 0)
        did_you_mean = None
        # Spelling is suggested when the words found nothing, not when a filter did.
        if text and not total and ":" not in text and not query.filters:
            did_you_mean = self._did_you_mean(searcher, text)
        return SearchPage(total, hits, facets, fell_back, did_you_mean)

    def _facet_counts(
        self, searcher: tantivy.Searcher, q: tantivy.Query, names: Sequence[str] = DEFAULT_FACETS
    ) -> dict[str, list[tuple[str, int]]]:
        # One terms aggregation per facet, single-valued columns mostly: measured faster
        # than one multi-valued column holding them all. segment_size bounds the
        # per-segment candidates: counting every subject was most of a search; the top 20
        # stay right.
        spec = {
            name: {"terms": {"field": _facet_field(name), "size": 20, "segment_size": 40}}
            for name in names
            if name in FACETS
        }
        if not spec:
            return {}
        raw = searcher.aggregate(q, spec)
        out = {}
        for name in spec:
            buckets = raw.get(name, {}).get("buckets", [])
            if name in NUMERIC_FACETS:
                out[name] = [(facet_value(name, b["key"]), int(b["doc_count"])) for b in buckets]
            else:
                out[name] = [(str(b["key"]), int(b["doc_count"])) for b in buckets]
        return out

    def _did_you_mean(self, searcher: tantivy.Searcher, text: str) -> str | None:
        """Replace each word the index does not know with the closest word it does."""
        words = _WORD.findall(plain_words(text).lower())
        changed, out = False, []
        for w in words:
            if (
                not w.isalpha()
                or _CJK_RUN.search(w)
                or searcher.doc_freq("title", w)
                or searcher.doc_freq("author", w)
            ):
                out.append(w)
                continue
            candidates = (
                [t for t, _n in searcher.terms_with_prefix("title", w[:2], limit=400)]
                if len(w) >= 3
                else []
            )
            best = difflib.get_close_matches(w, candidates, n=1, cutoff=0.75)
            if best:
                out.append(best[0])
                changed = True
            else:
                out.append(w)
        return " ".join(out) if changed else None

    def matching_ids(self, query: SearchQuery, limit: int) -> list[int]:
        """Every record id a query matches, best first, up to ``limit``: for exports."""
        searcher = self.index.searcher()
        text = query.text.strip()
        base, fell_back = self._parse(text) if text else (tantivy.Query.all_query(), False)
        try:
            result = searcher.search(self._filtered(base, query.filters), limit, count=False)
        except ValueError:  # as in search(): it parsed but cannot run
            if fell_back:
                raise
            words = self._filtered(self._words(text), query.filters)
            result = searcher.search(words, limit, count=False)
        return [int(searcher.doc(a).get_first("id") or 0) for _s, a in result.hits]

    def suggest(self, prefix: str, limit: int = 8) -> list[str]:
        """Words of titles and authors starting with what the reader has typed so far."""
        words = _WORD.findall(prefix.lower())
        if not words:
            return []
        searcher = self.index.searcher()
        last = words[-1]
        ranked = [t for t, _n in searcher.terms_with_prefix("suggest", last, limit=limit)]
        head = " ".join(words[:-1])
        return [f"{head} {t}".strip() for t in ranked]

    def count(self) -> int:
        return int(self.index.searcher().num_docs)


class _TantivyStaging:
    def __init__(self, index: TantivyIndex, writer: tantivy.IndexWriter) -> None:
        self.index, self.writer = index, writer
        self.count = 0
        self.committed = False

    def add(self, docs: Iterable[SearchDoc]) -> None:
        for d in docs:
            self.writer.delete_documents_by_query(self.index._id_query(d.record_id))
            self.writer.add_document(self.index._doc(d))
            self.count += 1

    def commit(self) -> None:
        self.writer.commit()
        self.committed = True


# A query clause: an optional "-", an optional "field:", then a phrase, a group or a word.
_CLAUSE = re.compile(r'(-?)(?:(\w+):)?("[^"]*"|\([^)]*\)|\S+)')


def title_terms(text: str) -> list[tuple[str, bool]]:
    """The words of a query that can match a title, as tantivy's default tokenizer cuts
    them (lower case, Chinese segmented), each with whether it is a prefix ("hist*"): not
    negated ones, not those of another field, not the operators AND, OR, NOT."""
    terms: dict[str, bool] = {}
    for negated, name, value in _CLAUSE.findall(segment(text)):
        if negated or (name and name.lower() != "title"):
            continue
        for word, star in _TERM.findall(value):
            if word in ("AND", "OR", "NOT") or len(word) > 40:
                continue
            terms[word.lower()] = terms.get(word.lower(), False) or bool(star)
    return list(terms.items())


_TERM = re.compile(r"(\w+)(\*?)")


def title_marker(text: str) -> Callable[[str], str]:
    """A function that escapes a title and puts <b> around the query's words in it, built
    once per search: whole words for alphabetic scripts, any occurrence for Chinese."""
    terms = sorted(title_terms(text) if text else [], key=lambda t: len(t[0]), reverse=True)
    if not terms:
        return _escape
    alternatives = []
    for t, star in terms:
        if _CJK_RUN.match(t):
            alternatives.append(re.escape(t))  # Chinese words stand inside longer runs
        else:
            alternatives.append(rf"(?<!\w){re.escape(t)}" + ("" if star else r"(?!\w)"))
    pattern = re.compile("|".join(alternatives), re.IGNORECASE)

    def mark(title: str) -> str:
        out, pos = [], 0
        for m in pattern.finditer(title):
            out.append(_escape(title[pos : m.start()]))
            out.append(f"<b>{_escape(m.group(0))}</b>")
            pos = m.end()
        out.append(_escape(title[pos:]))
        return "".join(out)

    return mark
