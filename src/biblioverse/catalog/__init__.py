"""The catalogue: bibliographic records (MARC21), items, import and export."""

from biblioverse.catalog.editing import RecordForm
from biblioverse.catalog.errors import CatalogFileInvalid, ItemNotFound, RecordNotFound
from biblioverse.catalog.importing import (
    BadRecord,
    CatalogImportReport,
    ItemImportReport,
    import_items_csv,
    import_marc,
)
from biblioverse.catalog.indexing import (
    availability_changed,
    merge_record_changes,
    rebuild_index,
    reindex_records,
    reindexer,
    search_docs,
    subscribers,
)
from biblioverse.catalog.models import Item, Record, RecordKey
from biblioverse.catalog.rules import ItemStatus, ItemType, normalise_isbn
from biblioverse.catalog.search import (
    IndexOutdated,
    SearchDoc,
    SearchIndex,
    SearchPage,
    SearchQuery,
    TantivyIndex,
)
from biblioverse.catalog.service import (
    ItemChange,
    NewItem,
    add_item,
    add_items,
    export_marc,
    export_marcxml,
    find_item,
    get_item,
    get_record,
    item_for_update,
    record_form,
    save_record,
    update_item,
)

__all__ = [
    "BadRecord",
    "CatalogFileInvalid",
    "CatalogImportReport",
    "IndexOutdated",
    "Item",
    "ItemChange",
    "ItemImportReport",
    "ItemNotFound",
    "ItemStatus",
    "ItemType",
    "NewItem",
    "Record",
    "RecordForm",
    "RecordKey",
    "RecordNotFound",
    "SearchDoc",
    "SearchIndex",
    "SearchPage",
    "SearchQuery",
    "TantivyIndex",
    "add_item",
    "add_items",
    "availability_changed",
    "export_marc",
    "export_marcxml",
    "find_item",
    "get_item",
    "get_record",
    "import_items_csv",
    "import_marc",
    "item_for_update",
    "merge_record_changes",
    "normalise_isbn",
    "rebuild_index",
    "record_form",
    "reindex_records",
    "reindexer",
    "save_record",
    "search_docs",
    "subscribers",
    "update_item",
]
