"""
Django settings for Attain, read from environment variables.

With nothing configured, Attain runs on a SQLite file with Celery tasks run
eagerly in the web process. Setting DATABASE_URL and CELERY_BROKER_URL moves it
to PostgreSQL and a Redis-backed worker.
"""

from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DEBUG", default=False)
TESTING = env.bool("ATTAIN_TESTING", default=False)

# A development key is only acceptable while DEBUG is on or under test.
if DEBUG or TESTING:
    SECRET_KEY = env("SECRET_KEY", default="dev-only-insecure-key-change-me")
else:
    SECRET_KEY = env("SECRET_KEY")

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "csp",
    "allauth",
    "allauth.account",
    "allauth.mfa",
    "allauth.usersessions",
    "spm",
    "goals",
    "activity",
    "measurement",
    "coaching",
    "compensation",
    "routing",
    "followups",
    "integrations",
    "notifications",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "csp.middleware.CSPMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "spm.middleware.OrganizationMiddleware",
    "spm.mfa.AdminMfaMiddleware",
]

ROOT_URLCONF = "spm.urls"
WSGI_APPLICATION = "spm.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "spm.context_processors.organization",
            ],
        },
    },
]

DATABASES = {
    "default": env.db(
        "DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'attain.sqlite3'}"
    )
}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=0)
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the eager import task and page reads share the file.
    DATABASES["default"].setdefault("OPTIONS", {})
    DATABASES["default"]["OPTIONS"].setdefault(
        "init_command", "PRAGMA journal_mode=WAL;"
    )
    DATABASES["default"]["OPTIONS"].setdefault("timeout", 20)
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Django's PostgreSQL backend plus the per-statement tenant setting that
    # row-level security reads (see docs/security.md). DATABASE_URL names the
    # application role; run migrate with it set to the owner of the tables.
    DATABASES["default"]["ENGINE"] = "spm.rls"
    # Parameters travel apart from the SQL text, so a statement run again on
    # the same connection reuses its prepared plan. psycopg prepares it on its
    # DATABASE_PREPARE_THRESHOLD-th run. This cuts the PostgreSQL time of lead
    # intake and routing by about a third (docs/benchmarks.md).
    if env.bool("DATABASE_SERVER_SIDE_BINDING", default=True):
        DATABASES["default"].setdefault("OPTIONS", {}).update(
            server_side_binding=True,
            prepare_threshold=env.int("DATABASE_PREPARE_THRESHOLD", default=5),
        )

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "spm.User"
# User.email is unique through a case-insensitive constraint on Lower(email),
# which this check does not recognise.
SILENCED_SYSTEM_CHECKS = ["auth.W004"]

_VALIDATORS = "django.contrib.auth.password_validation"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": f"{_VALIDATORS}.UserAttributeSimilarityValidator"},
    {"NAME": f"{_VALIDATORS}.MinimumLengthValidator"},
    {"NAME": f"{_VALIDATORS}.CommonPasswordValidator"},
    {"NAME": f"{_VALIDATORS}.NumericPasswordValidator"},
]

AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATICFILES_FINDERS = [
    "django.contrib.staticfiles.finders.FileSystemFinder",
    "django.contrib.staticfiles.finders.AppDirectoriesFinder",
    "spm.staticfiles.VendorFinder",
]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": env(
            "STATICFILES_BACKEND",
            default="django.contrib.staticfiles.storage.StaticFilesStorage",
        )
    },
}

# Email: console backend unless EMAIL_URL is set (smtp://user:pass@host:587).
vars().update(env.email_url("EMAIL_URL", default="consolemail://"))
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="Attain <attain@localhost>")

# Authentication (django-allauth): the email address is the login.
LOGIN_REDIRECT_URL = "home"
LOGIN_URL = "account_login"
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_EMAIL_VERIFICATION = env("ACCOUNT_EMAIL_VERIFICATION", default="mandatory")
ACCOUNT_LOGOUT_ON_PASSWORD_CHANGE = False
ACCOUNT_LOGIN_ON_EMAIL_CONFIRMATION = True
ACCOUNT_ADAPTER = "spm.adapters.AccountAdapter"

# Rate limits per allauth action, each "<count>/<period>/<per>": per is ip,
# key (the email address signed in or reset) or user. A refused sign-in shows
# "Too many failed login attempts" on the form; other refusals get a 429 page.
# The counts live in the cache (CACHES below). allauth.mfa counts wrong
# authenticator codes under login_failed too, keyed by the user.
ACCOUNT_RATE_LIMITS = {
    "login": "30/m/ip",
    "login_failed": "10/m/ip,5/5m/key",
    "signup": "20/h/ip",
    "reset_password": "20/h/ip,5/h/key",
    "reset_password_from_key": "20/m/ip",
    "change_password": "5/m/user",
    "reauthenticate": "10/m/user",
}
# The client address for per-ip limits is REMOTE_ADDR unless proxies are
# trusted: see TRUSTED_PROXY_COUNT in the production block.
ALLAUTH_TRUSTED_PROXY_COUNT = 0

# Two-factor authentication: an authenticator app (TOTP) with recovery codes.
# Organisations can require it of their admins (spm.mfa.AdminMfaMiddleware).
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes"]
MFA_TOTP_ISSUER = "Attain"
# allauth.usersessions records each sign-in's session, so that removing a
# member can end their sessions (spm.services.membership_remove).
USERSESSIONS_TRACK_ACTIVITY = False

# Background work. Without a broker, tasks run eagerly in the calling process.
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default="")
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Workers reuse database connections under CONN_MAX_AGE (spm/celery.py).
CELERY_DB_REUSE_MAX = 1_000_000_000
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=600)
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=660)
# Above the longest task time limit, so Redis never redelivers a running task.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
CELERY_TASK_DEFAULT_QUEUE = env("CELERY_TASK_DEFAULT_QUEUE", default="default")
# Periodic work, run by `celery beat`. Each app adds its entries here.
CELERY_BEAT_SCHEDULE: dict[str, dict] = {}
# Lead routing: route the leads whose routing task was lost (routing/tasks.py).
CELERY_BEAT_SCHEDULE["routing-sweep-pending-leads"] = {
    "task": "routing.tasks.sweep_pending_leads_task",
    "schedule": 15.0,
    "options": {"expires": 14},
}
# Predictive lead score: retrain weekly each organisation with enough
# labelled leads, on the "calc" queue (routing/tasks.py).
CELERY_BEAT_SCHEDULE["routing-lead-model-train"] = {
    "task": "routing.tasks.lead_model_train_all_task",
    "schedule": 7 * 86400.0,
    "options": {"queue": "calc"},
}
# Response SLA: close the timers that are due, and reassign or escalate the
# leads whose rep missed the first touch (routing/sla.py).
CELERY_BEAT_SCHEDULE["routing-response-timers"] = {
    "task": "routing.tasks.response_timers_sweep_task",
    "schedule": 60.0,
    "options": {"expires": 55},
}
# Lead routing has a queue of its own, so a long import never delays a lead.
# A commission run sends a task per batch of members, which can fill every
# worker process for minutes, so it goes to "calc". Run the "routing" queue
# on worker processes of its own (Docker Compose does).
CELERY_TASK_ROUTES: dict[str, dict] = {
    "routing.tasks.*": {"queue": "routing"},
    "compensation.tasks.*": {"queue": env("CELERY_CALC_QUEUE", default="calc")},
}
# Coaching: evaluate the rules hourly, check recoveries daily, and send each
# organisation's digest on the first hourly run after 07:00 in its time zone.
CELERY_BEAT_SCHEDULE["coaching-evaluate"] = {
    "task": "coaching.tasks.coaching_evaluate_all_task",
    "schedule": 3600.0,
}
CELERY_BEAT_SCHEDULE["coaching-recovery-check"] = {
    "task": "coaching.tasks.coaching_recovery_check_all_task",
    "schedule": 86400.0,
}
CELERY_BEAT_SCHEDULE["coaching-digest"] = {
    "task": "coaching.tasks.coaching_digest_all_task",
    "schedule": 3600.0,
}
# Notifications: send email whose quiet hours ended or whose retry is due
# every minute, and the daily digests that are due (notifications/delivery.py).
CELERY_BEAT_SCHEDULE["notifications-deliveries-due"] = {
    "task": "notifications.tasks.deliveries_send_due_task",
    "schedule": 60.0,
    "options": {"expires": 55},
}
CELERY_BEAT_SCHEDULE["notifications-digests"] = {
    "task": "notifications.tasks.digests_send_task",
    "schedule": 300.0,
    "options": {"expires": 295},
}
# Webhook and chat retries that are due, every minute; and once a day, delete
# read notifications and delivery rows past the retention period.
CELERY_BEAT_SCHEDULE["notifications-outbound-due"] = {
    "task": "notifications.tasks.outbound_deliveries_send_due_task",
    "schedule": 60.0,
    "options": {"expires": 55},
}
CELERY_BEAT_SCHEDULE["notifications-prune"] = {
    "task": "notifications.tasks.notifications_prune_task",
    "schedule": 86400.0,
}
# Days that read notifications and finished delivery rows are kept.
NOTIFICATIONS_RETENTION_DAYS = env.int("NOTIFICATIONS_RETENTION_DAYS", default=90)
# Follow-up sequences: start due steps every minute, re-send steps a lost
# worker left started, and enrol quiet deals (followups/tasks.py).
CELERY_BEAT_SCHEDULE["followups-dispatch-due"] = {
    "task": "followups.tasks.dispatch_due_task",
    "schedule": 60.0,
    "options": {"expires": 55},
}
CELERY_BEAT_SCHEDULE["followups-sweep-started"] = {
    "task": "followups.tasks.sweep_started_runs_task",
    "schedule": 300.0,
    "options": {"expires": 295},
}
CELERY_BEAT_SCHEDULE["followups-scan-elapsed-triggers"] = {
    "task": "followups.tasks.scan_elapsed_triggers_task",
    "schedule": 900.0,
    "options": {"expires": 895},
}
# CRM sync: queue an incremental run of every active connection every five
# minutes, on the "sync" queue (integrations/tasks.py).
CELERY_BEAT_SCHEDULE["integrations-sync-incremental"] = {
    "task": "integrations.tasks.sync_incremental_all_task",
    "schedule": 300.0,
    "options": {"expires": 295},
}
CELERY_TASK_ROUTES["integrations.tasks.*"] = {"queue": "sync"}
# CRM webhook events whose application task was lost, for example while the
# broker was down (integrations/tasks.py).
CELERY_BEAT_SCHEDULE["integrations-webhook-events-sweep"] = {
    "task": "integrations.tasks.webhook_events_sweep_task",
    "schedule": 60.0,
    "options": {"expires": 55},
}
# Follow-up emails one rep may send per day; later steps wait for the next
# send window.
FOLLOWUPS_DAILY_SEND_LIMIT = env.int("FOLLOWUPS_DAILY_SEND_LIMIT", default=100)
# The address of the web app, for links in emails sent by background tasks.
ATTAIN_BASE_URL = env("ATTAIN_BASE_URL", default="http://127.0.0.1:8000")
# The OAuth 2 apps behind "Connect with HubSpot" and "Connect with Pipedrive"
# (integrations/oauth_install.py). A provider without a client ID keeps only
# the form where the admin pastes credentials. The defaults are the URLs
# HubSpot's and Pipedrive's OAuth guides give. HubSpot's scopes are sent in
# the authorization URL and must all be declared on the app. Pipedrive's
# are set on the app itself.
HUBSPOT_OAUTH_CLIENT_ID = env("HUBSPOT_OAUTH_CLIENT_ID", default="")
HUBSPOT_OAUTH_CLIENT_SECRET = env("HUBSPOT_OAUTH_CLIENT_SECRET", default="")
HUBSPOT_OAUTH_AUTHORIZE_URL = env(
    "HUBSPOT_OAUTH_AUTHORIZE_URL", default="https://app.hubspot.com/oauth/authorize"
)
HUBSPOT_OAUTH_TOKEN_URL = env(
    "HUBSPOT_OAUTH_TOKEN_URL", default="https://api.hubapi.com/oauth/v1/token"
)
HUBSPOT_OAUTH_SCOPES = env(
    "HUBSPOT_OAUTH_SCOPES",
    default=(
        "oauth crm.objects.companies.read crm.objects.contacts.read "
        "crm.objects.contacts.write crm.objects.deals.read "
        "crm.objects.owners.read crm.schemas.deals.read"
    ),
)
PIPEDRIVE_OAUTH_CLIENT_ID = env("PIPEDRIVE_OAUTH_CLIENT_ID", default="")
PIPEDRIVE_OAUTH_CLIENT_SECRET = env("PIPEDRIVE_OAUTH_CLIENT_SECRET", default="")
PIPEDRIVE_OAUTH_AUTHORIZE_URL = env(
    "PIPEDRIVE_OAUTH_AUTHORIZE_URL",
    default="https://oauth.pipedrive.com/oauth/authorize",
)
PIPEDRIVE_OAUTH_TOKEN_URL = env(
    "PIPEDRIVE_OAUTH_TOKEN_URL", default="https://oauth.pipedrive.com/oauth/token"
)

# Cache. The rate limits of sign-in and of the API count requests in it, so
# in production every web process must share one: Redis from CACHE_URL, else
# REDIS_URL, else a Redis Celery broker. Without any of them each process
# counts on its own, in memory. Tests always use memory.
_CACHE_REDIS_URL = env("CACHE_URL", default="") or env("REDIS_URL", default="")
if not _CACHE_REDIS_URL and CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
    _CACHE_REDIS_URL = CELERY_BROKER_URL
if _CACHE_REDIS_URL and not TESTING:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": _CACHE_REDIS_URL,
            "KEY_PREFIX": "attain",
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "spm.authentication.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "EXCEPTION_HANDLER": "spm.api.exception_handler",
    # Requests per API key, per signed-in user and per anonymous address, as
    # "<count>/<s|min|hour|day>". An empty variable turns that limit off.
    "DEFAULT_THROTTLE_CLASSES": [
        "spm.throttling.ApiKeyRateThrottle",
        "spm.throttling.SessionUserRateThrottle",
        "spm.throttling.AnonymousRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "api_key": env("API_THROTTLE_RATE_KEY", default="600/min") or None,
        "user": env("API_THROTTLE_RATE_USER", default="300/min") or None,
        "anon": env("API_THROTTLE_RATE_ANON", default="60/min") or None,
    },
    # Proxies in front of the app whose X-Forwarded-For entries are trusted
    # when throttling anonymous callers. The production block sets it.
    "NUM_PROXIES": None,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Attain API",
    "DESCRIPTION": "Sales performance metrics per organisation.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# Imports: the largest accepted upload, and the longest accepted CSV field.
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DATA_UPLOAD_MAX_MEMORY_SIZE", default=50 * 2**20)
FILE_UPLOAD_MAX_MEMORY_SIZE = 10 * 2**20
ATTAIN_IMPORT_MAX_FIELD_CHARS = env.int("ATTAIN_IMPORT_MAX_FIELD_CHARS", default=10_000)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
}

# Content Security Policy (django-csp), sent on every response. No inline
# script: charts read their figures from JSON data blocks and draw them with
# static/js/charts.js. The only inline styles allowed are the <style>
# elements that the bundled htmx and plotly.js insert, each by the SHA-256 of
# its text. Another htmx or plotly.js version may insert other text: the
# browser test in tests/e2e/test_hardening_csp.py then reports it.
CSP_BUNDLED_STYLE_HASHES = [
    # The empty <style> that plotly.js fills through the CSSOM, which CSP
    # does not restrict: an empty element applies nothing by itself.
    "'sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU='",
    # htmx 2.0.10 (django-htmx 1.29): the .htmx-indicator rules.
    "'sha256-faU7yAF8NxuMTNEwVmBz+VcYeIoBQ2EMHW3WaVxCvnk='",
    # plotly.js 3.7.0 (plotly 6.9): the MapLibre map styles, added on load.
    "'sha256-V2sIX92Uh6ZaGSFTKMHghsB85b9toJtmazgG09AI2uk='",
]
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'", *CSP_BUNDLED_STYLE_HASHES],
        "img-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "frame-ancestors": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "object-src": ["'none'"],
    },
}
X_FRAME_OPTIONS = "DENY"

if not DEBUG and not TESTING:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_CONTENT_TYPE_NOSNIFF = True
    SECURE_REFERRER_POLICY = "same-origin"
    SESSION_COOKIE_HTTPONLY = True
    # Production runs behind one reverse proxy that terminates TLS and sets
    # X-Forwarded-Proto and X-Forwarded-For. The rate limits take the client
    # address from X-Forwarded-For, TRUSTED_PROXY_COUNT entries from its end.
    # Set 0 for an app that clients reach directly, so REMOTE_ADDR is used.
    ALLAUTH_TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=1)
    REST_FRAMEWORK["NUM_PROXIES"] = ALLAUTH_TRUSTED_PROXY_COUNT

if TESTING:
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
