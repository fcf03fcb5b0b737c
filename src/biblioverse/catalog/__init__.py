"""The catalogue: bibliographic records (MARC21), items, import and export."""

from biblioverse.catalog.errors import CatalogFileInvalid, RecordNotFound
from biblioverse.catalog.models import Item, Record, RecordKey
from biblioverse.catalog.rules import ItemStatus, ItemType, normalise_isbn
from biblioverse.catalog.search import SearchDoc, SearchIndex, SearchPage, SearchQuery, TantivyIndex
from biblioverse.catalog.service import (
    BadRecord,
    CatalogImportReport,
    ItemImportReport,
    NewItem,
    add_items,
    export_marc,
    export_marcxml,
    get_record,
    import_items_csv,
    import_marc,
    rebuild_index,
    reindex_records,
    reindexer,
    search_docs,
)

__all__ = [
    "BadRecord",
    "CatalogFileInvalid",
    "CatalogImportReport",
    "Item",
    "ItemImportReport",
    "ItemStatus",
    "ItemType",
    "NewItem",
    "Record",
    "RecordKey",
    "RecordNotFound",
    "SearchDoc",
    "SearchIndex",
    "SearchPage",
    "SearchQuery",
    "TantivyIndex",
    "add_items",
    "export_marc",
    "export_marcxml",
    "get_record",
    "import_items_csv",
    "import_marc",
    "normalise_isbn",
    "rebuild_index",
    "reindex_records",
    "reindexer",
    "search_docs",
]
