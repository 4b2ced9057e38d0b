"""One executing sync run per CRM connection, held by a PostgreSQL advisory lock.

Queuing a run is guarded by the connection's row lock and the age of its
last queued or running run. That guard cannot see a run that still executes
after RUN_STALE_AFTER (a long first sync), nor a run that Celery delivers
again after its worker died. Two runs of one connection would then write the
same cursors at once.

A run therefore executes while its database session holds the advisory lock
(LOCK_CLASS, connection id). A session-level lock outlives the page
transactions of the run, and PostgreSQL releases it when the session ends,
so a worker killed in the middle of a run frees the connection for the next
run at once. Another session's try fails while the lock is held, and
``pg_locks`` shows the holder to the busy checks of "Sync now" and the beat.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from django.db import connection as db

# The first key of every sync run lock. The second is the connection's id.
LOCK_CLASS = 0x5359_4E43  # "SYNC"


def _supported() -> bool:
    return db.vendor == "postgresql"


@contextlib.contextmanager
def executing(connection_id: int) -> Iterator[bool]:
    """Hold the connection's run lock for the block, if no other session has it.

    Yield True while this session holds the lock, False when another one
    does. Databases other than PostgreSQL run no sync, and always yield True.
    """
    if not _supported():
        yield True
        return
    with db.cursor() as cursor:
        cursor.execute(
            "SELECT pg_try_advisory_lock(%s::integer, %s::integer)",
            [LOCK_CLASS, connection_id],
        )
        acquired = cursor.fetchone()[0]
    try:
        yield acquired
    finally:
        if acquired:
            with db.cursor() as cursor:
                cursor.execute(
                    "SELECT pg_advisory_unlock(%s::integer, %s::integer)",
                    [LOCK_CLASS, connection_id],
                )


def is_executing(connection_id: int) -> bool:
    """Return whether a session holds the connection's run lock now."""
    if not _supported():
        return False
    with db.cursor() as cursor:
        # pg_locks lists every database of the server, and an advisory lock
        # belongs to the database it was taken in. objsubid 2 marks a lock
        # taken with two integer keys.
        cursor.execute(
            "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' "
            "AND database = (SELECT oid FROM pg_database "
            "WHERE datname = current_database()) "
            "AND classid = %s::bigint::oid AND objid = %s::bigint::oid "
            "AND objsubid = 2 AND granted)",
            [LOCK_CLASS, connection_id],
        )
        return cursor.fetchone()[0]
