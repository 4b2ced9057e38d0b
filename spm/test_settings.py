"""Settings for the test suite: the environment's database and broker, fast hashing."""

import os

os.environ.setdefault("ATTAIN_TESTING", "1")

from spm.settings import *  # noqa: E402,F403

EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
ACCOUNT_EMAIL_VERIFICATION = "optional"
STORAGES["staticfiles"]["BACKEND"] = (  # noqa: F405
    "django.contrib.staticfiles.storage.StaticFilesStorage"
)

# Tasks run eagerly in tests; the tests marked "worker" send them to a real
# Celery worker on the Redis broker instead.
CELERY_TASK_ALWAYS_EAGER = True

# Static files come from the finders in tests; there is no collected folder.
STATIC_ROOT = None
WHITENOISE_AUTOREFRESH = True
