"""Django's PostgreSQL backend, setting the tenant of row-level security per statement.

Use it with ``"ENGINE": "spm.rls"``; spm/settings.py does so for every
PostgreSQL ``DATABASE_URL``. Before a statement runs, an execute wrapper
compares the setting the statement needs (``spm.rls.scope.required_setting``)
with the one last sent on this connection, and sends ``set_config`` only when
they differ. The setting statement goes through the raw psycopg cursor, so
``connection.queries`` and query-count tests do not see it.

The values are session settings (``set_config(..., false)``), so they outlive
the transaction that set them, except that a rollback, full or to a
savepoint, restores the values from before. The backend then discards the
value it last sent and sends the setting again before the next statement. Each thread
has its own connection and its own copy of the context variable, so threads
never share a setting.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

from django.db.backends.postgresql import base, operations

from spm.rls.scope import TenantSetting, required_setting

logger = logging.getLogger(__name__)

SET_TENANT_SQL = (
    "SELECT set_config('app.organization_id', %s, false), "
    "set_config('app.all_tenants', %s, false)"
)


class DatabaseOperations(operations.DatabaseOperations):
    compiler_module = "spm.rls.compiler"


class DatabaseWrapper(base.DatabaseWrapper):
    ops_class = DatabaseOperations

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # The setting last sent on the open connection, or None when unknown.
        self.tenant_setting: TenantSetting | None = None
        self._sending_transaction_control = False
        self.execute_wrappers.append(self._tenant_setting_wrapper)

    def ensure_tenant_setting(self) -> None:
        """Send the setting the current context needs, unless the connection has it.

        Statements run through Django's cursors call this on their own. Code
        that runs SQL on the raw psycopg connection calls it first.
        """
        # Connecting first resets what a reopened connection is known to have.
        self.ensure_connection()
        self._apply_required_setting()

    def _apply_required_setting(self) -> None:
        required = required_setting()
        if required == self.tenant_setting or self.needs_rollback:
            # A broken transaction accepts no statement, so the statement
            # itself runs into Django's usual error instead.
            return
        self._send_tenant_setting(required)
        self.tenant_setting = required

    def _send_tenant_setting(self, setting: TenantSetting) -> None:
        logger.debug("Setting app.organization_id=%r app.all_tenants=%r", *setting)
        with self.wrap_database_errors, self.connection.cursor() as cursor:
            cursor.execute(SET_TENANT_SQL, setting)

    def _tenant_setting_wrapper(self, execute, sql, params, many, context):
        if not self._sending_transaction_control:
            self._apply_required_setting()
        return execute(sql, params, many, context)

    @contextlib.contextmanager
    def _transaction_control(self) -> Iterator[None]:
        """Send savepoint statements without touching the tenant setting."""
        self._sending_transaction_control = True
        try:
            yield
        finally:
            self._sending_transaction_control = False

    def init_connection_state(self) -> None:
        super().init_connection_state()
        # A pooled connection may carry the setting of its previous user.
        self.tenant_setting = None

    def _rollback(self) -> None:
        try:
            super()._rollback()
        finally:
            self.tenant_setting = None

    def _savepoint(self, sid) -> None:
        with self._transaction_control():
            super()._savepoint(sid)

    def _savepoint_commit(self, sid) -> None:
        with self._transaction_control():
            super()._savepoint_commit(sid)

    def _savepoint_rollback(self, sid) -> None:
        try:
            with self._transaction_control():
                super()._savepoint_rollback(sid)
        finally:
            self.tenant_setting = None
