"""Settings of the floor application, read from the environment.

The web and worker processes get the environment that bench/routing.py gives
the product (routing_bench.app_environment), so DATABASE_URL,
CELERY_BROKER_URL, SECRET_KEY and CONN_MAX_AGE come from there. The database
connection and Celery settings that affect a routed lead's path are the
product's (spm/settings.py). Everything else is left out: no middleware,
sessions, authentication, templates, cache or row-level security.
"""

import environ

env = environ.Env()

SECRET_KEY = env("SECRET_KEY")
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1"]
INSTALLED_APPS = ["floor_app"]
MIDDLEWARE: list[str] = []
ROOT_URLCONF = "floor_app.urls"
WSGI_APPLICATION = "floor_app.wsgi.application"
USE_TZ = True
TIME_ZONE = "UTC"

# The plain PostgreSQL backend with psycopg 3, the connection reuse and the
# server-side binding of the product. The product's backend (spm.rls) also
# sets the tenant for row-level security on each statement, which is
# product work and so not part of the floor.
DATABASES = {"default": env.db("DATABASE_URL")}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=0)
DATABASES["default"].setdefault("OPTIONS", {}).update(
    server_side_binding=True, prepare_threshold=5
)

CELERY_BROKER_URL = env("CELERY_BROKER_URL")
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_DB_REUSE_MAX = 1_000_000_000
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ROUTES = {"floor_app.tasks.*": {"queue": "routing"}}

# Errors of the view and task go to the gunicorn and worker logs.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="WARNING")},
}
