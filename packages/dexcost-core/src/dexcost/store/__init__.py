"""The local SQLite store: the ledger of every event and task, and the sync outbox.

Recording appends to an in-memory queue; a writer thread per file commits batches in
WAL mode. :func:`get_store` hands out one :class:`LocalStore` per file and process;
:func:`connect_readonly` opens a store for the read side (:mod:`dexcost.insights`).
"""

from ._connect import StoreNotFoundError, connect_readonly
from ._paths import ENV_BUFFER_PATH, default_buffer_path
from ._registry import get_store
from ._rows import event_from_row, task_from_row
from ._schema import SCHEMA_VERSION, SchemaVersionError, StoreError
from ._store import LocalStore, close_all_stores

__all__ = [
    "ENV_BUFFER_PATH",
    "SCHEMA_VERSION",
    "LocalStore",
    "SchemaVersionError",
    "StoreError",
    "StoreNotFoundError",
    "close_all_stores",
    "connect_readonly",
    "default_buffer_path",
    "event_from_row",
    "get_store",
    "task_from_row",
]
