"""Catalogue benchmark: import to searchable, search latency through the API, server memory.

    .venv/bin/python bench/search.py            # the 250,000 Library of Congress records
    .venv/bin/python bench/search.py --quick    # 20,000 records, under a minute

Needs `make loc-data`. Prints one JSON object per line (see DESIGN.md). The raw engine is the
same tantivy index queried in-process with the same parsed queries and facet aggregation, so
the ratio is what the HTTP API, the holdings look-up and the JSON cost on top of tantivy.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from biblioverse import catalog  # noqa: E402
from biblioverse.catalog.search import FACETS, SearchQuery  # noqa: E402
from biblioverse.db import make_engine, make_session_factory, transaction, utcnow  # noqa: E402
from biblioverse.migrate import upgrade  # noqa: E402

LOC = ROOT / "var/data/BooksAll.2016.part01.utf8"
BIN = Path(sys.executable).parent / "biblioverse"

# A mix of what readers type: one word, several words, a phrase, fielded, faceted.
QUERIES: list[tuple[str, dict[str, str]]] = [
    ("china", {}),
    ("history", {}),
    ("poetry", {}),
    ("united states congress", {}),
    ("civil war history", {}),
    ('"materia medica"', {}),
    ('"united states"', {}),
    ("title:hamlet", {}),
    ("author:shakespeare", {}),
    ("subject:education", {}),
    ("japan", {"language": "jpn"}),
    ("law", {"decade": "1990s"}),
    ("art", {"availability": "available"}),
    ("中国", {}),
    ("研究", {}),
    ("economic conditions", {"language": "eng"}),
]


def emit(metric: str, value: float, unit: str, **extra: object) -> None:
    print(
        json.dumps(
            {"bench": "search", "metric": metric, "value": round(value, 2), "unit": unit, **extra}
        ),
        flush=True,
    )


def first_records(n: int) -> bytes:
    """The first n whole records of the Library of Congress file."""
    data = LOC.read_bytes()
    offset = 0
    for _ in range(n):
        if offset >= len(data):
            break
        offset += int(data[offset : offset + 5])
    return data[:offset]


def p95(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=100)[94] if len(samples) >= 20 else max(samples)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="20,000 records")
    parser.add_argument("--requests", type=int, default=2000)
    args = parser.parse_args()
    if not LOC.exists():
        print(f"missing {LOC}: run `make loc-data`", file=sys.stderr)
        return 2
    n = 20_000 if args.quick else 250_000
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    work = Path(tempfile.mkdtemp(prefix="bv-bench-"))
    url = f"sqlite:///{work / 'biblioverse.db'}"
    upgrade(url)
    factory = make_session_factory(make_engine(url))
    data = first_records(n)

    # 1. Import to searchable: parse, store, index.
    start = time.perf_counter()
    with transaction(factory) as session:
        report = catalog.import_marc(session, None, data, at=utcnow())
    imported = time.perf_counter() - start
    index = catalog.TantivyIndex.recreate(work / "index" / "catalog")
    with transaction(factory) as session:
        indexed_count = catalog.rebuild_index(session, index)
    total_s = time.perf_counter() - start
    emit(
        "import_records_per_s",
        report.created / total_s,
        "records/s",
        goal=3000,
        better="higher",
        n=report.created,
        machine=machine,
    )
    emit(
        "import_store_only_records_per_s", report.created / imported, "records/s", n=report.created
    )
    emit("index_records_per_s", indexed_count / (total_s - imported), "records/s", n=indexed_count)

    # 2. Raw engine: the same queries on the same index, in-process, one after another.
    raw: list[float] = []
    for i in range(max(200, args.requests // 4)):
        text, filters = QUERIES[i % len(QUERIES)]
        q = SearchQuery(text, {k: [v] for k, v in filters.items()}, limit=20)
        t = time.perf_counter()
        searcher = index.index.searcher()
        parsed, _ = index._parse(q.text)
        full = index._filtered(parsed, q.filters)
        searcher.search(full, limit=20, count=True)
        searcher.aggregate(full, {f: {"terms": {"field": f"f_{f}", "size": 20}} for f in FACETS})
        raw.append((time.perf_counter() - t) * 1000)

    # 3. Through the HTTP API: a served app, 8 concurrent clients.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "BIBLIOVERSE_DATA_DIR": str(work), "BIBLIOVERSE_DATABASE_URL": url}
    server = subprocess.Popen(
        [str(BIN), "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                if httpx.get(f"{base}/health").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        with httpx.Client() as warm:  # jieba and the reader load once, before timing
            for text, filters in QUERIES:
                warm.get(f"{base}/api/v1/catalog/search", params={"q": text, **filters})
        latencies: list[float] = []
        errors = 0
        lock = threading.Lock()
        per_client = args.requests // 8

        def client(k: int) -> None:
            nonlocal errors
            with httpx.Client(timeout=30) as c:
                for i in range(per_client):
                    text, filters = QUERIES[(i + k) % len(QUERIES)]
                    t = time.perf_counter()
                    r = c.get(f"{base}/api/v1/catalog/search", params={"q": text, **filters})
                    ms = (time.perf_counter() - t) * 1000
                    with lock:
                        latencies.append(ms)
                        errors += r.status_code != 200

        threads = [threading.Thread(target=client, args=(k,)) for k in range(8)]
        t0 = time.perf_counter()
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        wall = time.perf_counter() - t0
        rss_kb = int(
            next(
                line.split()[1]
                for line in Path(f"/proc/{server.pid}/status").read_text().splitlines()
                if line.startswith("VmRSS:")
            )
        )
    finally:
        server.terminate()
        server.wait(timeout=10)
    if errors:
        print(f"{errors} requests failed", file=sys.stderr)
        return 1
    api_p95, raw_p95 = p95(latencies), p95(raw)
    emit(
        "query_p95_ms",
        api_p95,
        "ms",
        goal=15,
        better="lower",
        n=len(latencies),
        clients=8,
        records=n,
    )
    emit("query_p50_ms", statistics.median(latencies), "ms", n=len(latencies))
    emit("queries_per_s", len(latencies) / wall, "queries/s", clients=8)
    emit("raw_tantivy_query_p95_ms", raw_p95, "ms", n=len(raw))
    emit("ratio_vs_raw_tantivy", api_p95 / raw_p95, "x", goal=2.0, better="lower")
    emit("server_rss_mb", rss_kb / 1024, "MB", goal=500, better="lower", records=n)
    return 0


if __name__ == "__main__":
    sys.exit(main())
