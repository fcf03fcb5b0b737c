"""A module imported where it is first used rather than where it is named.

Every web worker and SIP2 process imports every context, but some libraries serve only a
few requests: shapely with numpy (18 MB of a worker) only the floor plans and routes. A
module level ``shapely = lazy_module("shapely")`` keeps the code reading as usual
(``shapely.Point(...)``) and loads the library with the first attribute asked of it. Type
checkers see the real module: import it under ``TYPE_CHECKING`` as well."""

from __future__ import annotations

import importlib
from typing import Any


class LazyModule:
    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("__") or attr == "_name":
            # copy and pickle look for dunder hooks on an instance made without __init__:
            # answer as a plain object would instead of importing (or recursing on _name)
            raise AttributeError(attr)
        # import_module holds the import lock, so two threads asking first load it once
        value = getattr(importlib.import_module(self._name), attr)
        # a module's attributes do not change: later reads skip this method altogether
        self.__dict__[attr] = value
        return value

    def __repr__(self) -> str:
        return f"<lazy module {self._name!r}>"

    def __reduce__(self) -> tuple[type[LazyModule], tuple[str]]:
        return LazyModule, (self._name,)


def lazy_module(name: str) -> Any:
    return LazyModule(name)
