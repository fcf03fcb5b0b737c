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


HEAVY_FOR_FEW = ("networkx", "httpx", "shapely", "numpy", "pymarc")


def test_a_web_worker_loads_route_finding_marc_and_webhooks_only_when_used() -> None:
    # networkx is 16 MB of a worker, shapely with numpy 18 MB, httpx with what it pulls in
    # about 5 MB, pymarc 4 MB
    assert loaded("biblioverse.app", (*HEAVY_FOR_FEW, "tantivy")) == {"tantivy"}


def test_a_lazy_module_is_imported_by_its_first_attribute() -> None:
    code = (
        "import sys\n"
        "from biblioverse.lazy import lazy_module\n"
        "wave = lazy_module('wave')\n"
        "before = 'wave' in sys.modules\n"
        "opened = wave.open\n"
        "print(before, 'wave' in sys.modules, opened is sys.modules['wave'].open)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "True", "True"]


def test_a_lazy_module_copies_and_pickles_without_importing() -> None:
    code = (
        "import copy, pickle, sys\n"
        "from biblioverse.lazy import lazy_module\n"
        "wave = lazy_module('wave')\n"
        "again = pickle.loads(pickle.dumps(wave))\n"
        "copy.copy(wave), copy.deepcopy(wave)\n"
        "print(repr(again), 'wave' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "<lazy module 'wave'> False"


def test_the_serve_parent_loads_no_database_layer() -> None:
    # it only supervises the workers; alembic and SQLAlchemy were 22 MB of it
    assert loaded("biblioverse.cli", ("alembic", "sqlalchemy", "typer")) == {"typer"}


def test_the_serve_parent_becomes_uvicorns_supervisor_alone() -> None:
    # `serve` replaces itself with biblioverse.supervise: the command line (typer, rich)
    # and the settings (pydantic) were 17 MB of a process that only watches workers
    candidates = ("typer", "rich", "pydantic", "sqlalchemy", "fastapi", "uvicorn")
    assert loaded("biblioverse.supervise", candidates) == set()
