"""What each kind of process loads: every web worker and the `serve` parent are counted in the
catalogue's memory goal (bench/search.py), so libraries that only some requests need are
imported by those requests."""

from __future__ import annotations

import subprocess
import sys


def loaded(module: str, candidates: tuple[str, ...]) -> set[str]:
    code = f"import sys, {module}\nprint(' '.join(m for m in {candidates!r} if m in sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    return set(out.split())


def test_a_web_worker_loads_route_finding_and_webhooks_only_when_used() -> None:
    # networkx is 16 MB of a worker, httpx with what it pulls in about 5 MB
    assert loaded("biblioverse.app", ("networkx", "httpx", "tantivy")) == {"tantivy"}


def test_the_serve_parent_loads_no_database_layer() -> None:
    # it only supervises the workers; alembic and SQLAlchemy were 22 MB of it
    assert loaded("biblioverse.cli", ("alembic", "sqlalchemy", "typer")) == {"typer"}
