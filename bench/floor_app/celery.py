import os

from celery import Celery
from celery.signals import task_postrun, task_prerun
from django.db import close_old_connections

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "floor_app.settings")

app = Celery("floor_app")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@task_prerun.connect
@task_postrun.connect
def _database_connections_recycle(sender=None, **kwargs) -> None:
    """Reuse the database connection between tasks, as the product's workers do."""
    if not getattr(getattr(sender, "request", None), "is_eager", False):
        close_old_connections()
