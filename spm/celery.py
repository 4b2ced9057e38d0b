import os

from celery import Celery
from celery.signals import task_postrun, task_prerun
from django.db import close_old_connections

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "spm.settings")

app = Celery("spm")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@task_prerun.connect
@task_postrun.connect
def _database_connections_recycle(sender=None, **kwargs) -> None:
    """Keep a worker's database connection between tasks, as a web process does.

    Celery's Django fix-up closes every connection before and after each
    task unless CELERY_DB_REUSE_MAX is set. Each task would then open a new
    PostgreSQL connection: about 4 ms on the benchmark machine, where a whole
    routed lead now takes about 9 ms. The settings give the fix-up a limit
    it never reaches, and this handler applies Django's rules for requests
    instead. A connection is closed once it is older than CONN_MAX_AGE (0
    closes it after every task), or once an error has left it unusable.

    A task run eagerly (no broker) runs inside the caller's request or
    transaction, so its connection is left alone.
    """
    if getattr(getattr(sender, "request", None), "is_eager", False):
        return
    close_old_connections()
