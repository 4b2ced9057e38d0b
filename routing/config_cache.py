"""Routing configuration kept in process memory until the organisation changes it.

Every lead reads the same configuration: the published rules with their
pools and reps, time off, scoring rules, qualification settings, the active
lead model, follow-up sequences, notification choices and the CRM
connection. Read from the database, that is about ten queries per lead.

PostgreSQL triggers move the organisation's ``ConfigVersion`` to a new
sequence number on every change to those tables (routing migration 0007).
One unit of work, such as an intake request or a routing task, reads the
version once when it enters ``config_scope``. Inside the scope,
``cached(name, loader)`` returns the value loaded earlier for that version,
or calls ``loader`` and keeps its result. Sequence numbers are never reused,
also after a rollback, so a value loaded from a transaction that rolled back
is never served again.

Outside a scope, and on databases without the triggers (SQLite), every call
runs its loader. Cached values are shared between units of work, so callers
must treat them as read-only.

A change committed after a unit of work read the version is seen by the next
unit of work. For a routing task, that is as if the task had run a moment
earlier.
"""

from __future__ import annotations

import contextlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from typing import TypeVar

from django.db import connection

T = TypeVar("T")

# Organisations whose configuration one process keeps; the least recently
# used one is dropped beyond this.
MAX_ORGANIZATIONS = 500

VERSION_SQL = "SELECT version FROM routing_configversion WHERE organization_id = %s"

# (organisation id, version) of the current unit of work, or None.
_scope: ContextVar[tuple[int, int] | None] = ContextVar(
    "routing_config_scope", default=None
)
_lock = threading.Lock()
# organisation id -> (version, {name: value})
_entries: OrderedDict[int, tuple[int, dict[str, object]]] = OrderedDict()


def config_version(organization_id: int) -> int | None:
    """Return the organisation's configuration version, or None without triggers.

    An organisation whose configuration never changed since the triggers
    were installed has no row yet, and gets version 0. The version table has
    no row-level security, so the statement goes through the raw psycopg
    cursor: it leaves the connection's tenant setting as it is, and query
    counts do not see it.
    """
    if connection.vendor != "postgresql":
        return None
    connection.ensure_connection()
    with connection.wrap_database_errors, connection.connection.cursor() as cursor:
        cursor.execute(VERSION_SQL, [organization_id])
        row = cursor.fetchone()
    return row[0] if row else 0


@contextlib.contextmanager
def config_scope(organization_id: int, version: int | None = None) -> Iterator[None]:
    """Serve ``cached`` values of the organisation's current version inside.

    ``version`` is a version the caller has just read, such as the API key
    lookup's, to save reading it again.
    """
    if version is None:
        version = config_version(organization_id)
    if version is None:
        yield
        return
    token = _scope.set((organization_id, version))
    try:
        yield
    finally:
        _scope.reset(token)


def in_config_scope() -> bool:
    """Return whether ``cached`` keeps values here."""
    return _scope.get() is not None


def cached(name: str, loader: Callable[[], T]) -> T:
    """Return ``loader()``, kept per organisation and configuration version.

    ``name`` must identify everything the loader's result depends on besides
    the configuration, such as the day for time off.
    """
    scope = _scope.get()
    if scope is None:
        return loader()
    organization_id, version = scope
    with _lock:
        entry = _entries.get(organization_id)
        if entry is not None and entry[0] == version and name in entry[1]:
            _entries.move_to_end(organization_id)
            return entry[1][name]  # type: ignore[return-value]
    value = loader()
    with _lock:
        entry = _entries.get(organization_id)
        if entry is None or entry[0] != version:
            entry = (version, {})
        entry[1][name] = value
        _entries[organization_id] = entry
        _entries.move_to_end(organization_id)
        while len(_entries) > MAX_ORGANIZATIONS:
            _entries.popitem(last=False)
    return value


def cache_clear() -> None:
    """Forget every kept value (for tests)."""
    with _lock:
        _entries.clear()
