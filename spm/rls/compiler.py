"""Django's PostgreSQL SQL compilers, marking each statement they run as ORM-built.

The mark lets ``spm.rls.base`` tell ORM statements, which may read every
tenant when no organisation is set, from raw SQL, which then reads none.
"""

from django.db.backends.postgresql import compiler

from spm.rls.scope import orm_statement

__all__ = [
    "SQLAggregateCompiler",
    "SQLCompiler",
    "SQLDeleteCompiler",
    "SQLInsertCompiler",
    "SQLUpdateCompiler",
]


class _ORMStatementMixin:
    def execute_sql(self, *args, **kwargs):
        with orm_statement():
            return super().execute_sql(*args, **kwargs)


class SQLCompiler(_ORMStatementMixin, compiler.SQLCompiler):
    pass


class SQLInsertCompiler(_ORMStatementMixin, compiler.SQLInsertCompiler):
    pass


class SQLDeleteCompiler(_ORMStatementMixin, compiler.SQLDeleteCompiler):
    pass


class SQLUpdateCompiler(_ORMStatementMixin, compiler.SQLUpdateCompiler):
    pass


class SQLAggregateCompiler(_ORMStatementMixin, compiler.SQLAggregateCompiler):
    pass
