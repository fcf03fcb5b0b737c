"""Every table, imported in one place: the metadata Alembic compares against."""

from biblioverse import audit, events, idempotency, reference
from biblioverse.accounts import models as accounts_models
from biblioverse.building import models as building_models
from biblioverse.catalog import models as catalog_models
from biblioverse.circulation import models as circulation_models
from biblioverse.db import Base
from biblioverse.devices import models as devices_models
from biblioverse.libraries import models as libraries_models
from biblioverse.readers import models as readers_models
from biblioverse.shelves import models as shelves_models
from biblioverse.sip2 import models as sip2_models
from biblioverse.twin import models as twin_models

metadata = Base.metadata

__all__ = [
    "accounts_models",
    "audit",
    "building_models",
    "catalog_models",
    "circulation_models",
    "devices_models",
    "events",
    "idempotency",
    "libraries_models",
    "metadata",
    "readers_models",
    "reference",
    "shelves_models",
    "sip2_models",
    "twin_models",
]
