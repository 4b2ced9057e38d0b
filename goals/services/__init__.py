"""Writes of goals: quotas, activity benchmarks and time off.

Each function takes keyword arguments, runs in one transaction and writes an
audit log entry with the old and new values of every object it changes.
"""

from goals.services.benchmarks import (
    BenchmarkError,
    benchmark_create,
    benchmark_delete,
    benchmark_scope_label,
    benchmark_update,
)
from goals.services.quota_import import QuotaImportResult, quotas_import
from goals.services.quotas import (
    QuotaCell,
    QuotaChange,
    QuotaCopyResult,
    QuotaError,
    QuotaProblem,
    QuotaSaveResult,
    quota_problems,
    quotas_copy_previous,
    quotas_save,
)
from goals.services.time_off import TimeOffError, time_off_create, time_off_delete

__all__ = [
    "BenchmarkError",
    "QuotaCell",
    "QuotaChange",
    "QuotaCopyResult",
    "QuotaError",
    "QuotaImportResult",
    "QuotaProblem",
    "QuotaSaveResult",
    "TimeOffError",
    "benchmark_create",
    "benchmark_delete",
    "benchmark_scope_label",
    "benchmark_update",
    "quota_problems",
    "quotas_copy_previous",
    "quotas_import",
    "quotas_save",
    "time_off_create",
    "time_off_delete",
]
