"""Settings shared by every environment; every value can come from the environment.

With no DATABASE_URL and no CELERY_BROKER_URL the system runs on the embedded default: an
embedded PostgreSQL under var/ (config/embedded_db, started on a process's first connection) and
Celery's filesystem transport, so a first look needs no server to install.
"""

from pathlib import Path
from typing import Any

import environ
from django.core.exceptions import ImproperlyConfigured

from config import embedded_db

BASE_DIR = Path(__file__).resolve().parent.parent.parent
env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)
VAR_DIR = Path(env.str("CREDITLINE_VAR_DIR", default=str(BASE_DIR / "var")))

DEBUG = env.bool("DJANGO_DEBUG", default=False)
SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="insecure-local-only-key-change-me-in-production")
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "axes",
    "tenants",
    "ledger",
    "ratecards",
    "metering",
    "billing",
    "portal",
    "insights",
]

MIDDLEWARE = [
    # First: every response under /api/ leaves as JSON in the error shape, `no-store`.
    "tenants.api.middleware.ApiErrorMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last (axes asks for it): turns a locked-out login into tenants.logins.lockout_response.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

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
            ],
        },
    },
]


_POSTGRESQL_ENGINES = ("django.db.backends.postgresql", "django.contrib.gis.db.backends.postgis")


def _database(url: str) -> dict[str, Any]:
    config: dict[str, Any] = env.db_url_config(url)
    if config["ENGINE"] not in _POSTGRESQL_ENGINES:
        raise ImproperlyConfigured(
            f"DATABASE_URL must be a PostgreSQL URL (postgres://...), not {url.split(':')[0]}:"
            " PostgreSQL is the only database engine (unset it for the embedded one)."
        )
    return _connections(config)


def _connections(config: dict[str, Any]) -> dict[str, Any]:
    config["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
    config["CONN_HEALTH_CHECKS"] = True
    return config


_DATABASE_URL = env.str("DATABASE_URL", default="")
DATABASES = {
    "default": (
        _database(_DATABASE_URL)
        if _DATABASE_URL
        else _connections(embedded_db.database_settings(VAR_DIR))
    ),
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Session logins (portal and admin): tenants.logins refuses a locked-out client (django-axes)
# and, in production, the old demo password, before ModelBackend checks the password.
AUTHENTICATION_BACKENDS = [
    "tenants.logins.LoginBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# The lockout with backoff (tenants/logins.py says how it counts): per client address,
# AXES_FAILURE_LIMIT failures lock it out for CREDITLINE_LOGIN_LOCKOUT_SECONDS, doubled for
# each further lockout within a day (at most a day).
AXES_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=5)
CREDITLINE_LOGIN_LOCKOUT_SECONDS = env.int("LOGIN_LOCKOUT_SECONDS", default=60)
AXES_COOLOFF_TIME = "tenants.logins.login_cool_off"
AXES_LOCKOUT_PARAMETERS = ["ip_address"]
AXES_CLIENT_IP_CALLABLE = "tenants.logins.login_client"
AXES_LOCKOUT_CALLABLE = "tenants.logins.lockout_response"
AXES_ENABLE_ACCESS_FAILURE_LOG = True  # the backoff counts this log
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_RESET_ON_SUCCESS = False
# Refuses a login with the old fixed demo password (on in production).
CREDITLINE_REFUSE_DEMO_PASSWORD = env.bool("CREDITLINE_REFUSE_DEMO_PASSWORD", default=False)
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/accounts/login/"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "static"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="billing@creditline.localhost")
# Seconds an SMTP connection may hang: an alert e-mail is sent inside the transaction that
# claims its outbox message, which must not stay open behind a mail server that is away.
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=10)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["tenants.api.auth.ApiKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["tenants.api.auth.HasScope"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["tenants.api.parsers.JSONParser"],
    "DEFAULT_SCHEMA_CLASS": "tenants.api.schema.CreditlineAutoSchema",
    "EXCEPTION_HANDLER": "tenants.api.errors.api_exception_handler",
    "UNAUTHENTICATED_USER": None,
    "DEFAULT_PAGINATION_CLASS": "tenants.api.pagination.CreatedCursorPagination",
    "PAGE_SIZE": 50,
    # Per API key (tenants/api/throttling.py); failed authentication is limited per client
    # address in the authentication itself.
    "DEFAULT_THROTTLE_CLASSES": ["tenants.api.throttling.ApiKeyRateThrottle"],
}
# The largest request body, in bytes (Django's setting; the API's JSON parser applies it too):
# more is a 413. A batch of 1,000 usage events is about 0.3 MB.
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DJANGO_DATA_UPLOAD_MAX_MEMORY_SIZE", default=2_621_440)
# Serve the OpenAPI schema at /api/schema/ and its docs at /api/docs/ (off in production unless
# set: the schema maps every route for whoever asks).
CREDITLINE_API_DOCS = env.bool("CREDITLINE_API_DOCS", default=True)
SPECTACULAR_SETTINGS = {
    "TITLE": "Creditline API",
    "DESCRIPTION": "Credit-based billing for AI-agent products.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# Cache: shared by every process (web, worker). Redis in production (CACHE_URL=redis://...);
# the embedded default keeps it in files under var/, which processes on one machine share.
CACHES = {"default": env.cache_url("CACHE_URL", default=f"filecache://{VAR_DIR / 'cache'}")}

# Celery: Redis (or RabbitMQ) in production, the filesystem transport by default.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="filesystem://")
_BROKER_DIR = VAR_DIR / "broker"
CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, Any] = (
    {
        "data_folder_in": str(_BROKER_DIR / "queue"),
        "data_folder_out": str(_BROKER_DIR / "queue"),
        "processed_folder": str(_BROKER_DIR / "processed"),
        # Exchange tables (kombu's default is ./control, relative to wherever a worker starts).
        "control_folder": str(_BROKER_DIR / "control"),
        "store_processed": False,
    }
    if CELERY_BROKER_URL.startswith("filesystem")
    else {
        # Redis hands an unacknowledged message to another worker once it is this many
        # seconds old, and workers look for such messages every 5 s (each look scans): a
        # killed worker's tasks come back within a minute. A task that may run longer (the
        # ledger's verify) takes a lease (tenants/leases.py), so the second copy Redis hands
        # out exits at once; the sweeps are safe to run twice at once. No task is sent with a
        # countdown or an ETA (Redis would hand it out early, and again).
        "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=45),
        "unacked_restore_interval": 5,
        "unacked_restore_throttle": 1,
        # A send to a broker that is down fails at once instead of retrying inside a request:
        # what was to be sent waits in the outbox (tenants/outbox.py) for the relay's sweep.
        "max_retries": 0,
    }
)
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
# Acknowledge a task after it ran, not when it was received, and requeue it when the worker
# process running it dies (SIGKILL, OOM): a task is lost only if it ran. Every task is
# idempotent (see docs/architecture.md, "Side effects"), so running one twice is harmless.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
# One message at a time per worker process: a killed worker holds one unacknowledged task.
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ALWAYS_EAGER = False
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
# Each app adds its periodic tasks here, named after the app.
CELERY_BEAT_SCHEDULE: dict[str, dict[str, Any]] = {
    "ledger.expire_due": {"task": "ledger.expire_due", "schedule": 60.0},
    "ledger.verify": {"task": "ledger.verify", "schedule": 3600.0},
}

# Creditline's own knobs.
CREDITLINE_PUBLIC_URL = env.str("CREDITLINE_PUBLIC_URL", default="http://127.0.0.1:8000")
# Usage events may be reported this many days after they occurred (older ones: 422).
CREDITLINE_BACKDATE_DAYS = env.int("CREDITLINE_BACKDATE_DAYS", default=35)
# Minutes idle before metering's sweep fails a running workflow run; a suspended one only has
# its hold released (it stays resumable).
CREDITLINE_WORKFLOW_TTL_MINUTES = env.int("CREDITLINE_WORKFLOW_TTL_MINUTES", default=60)
# Rate limits (tenants/api/throttling.py), counted in the shared cache: requests per API key,
# and failed authentications per client address ("N/s", "N/min", "N/h", "N/day"; empty: off).
CREDITLINE_API_KEY_RATE = env.str("CREDITLINE_API_KEY_RATE", default="6000/min")
CREDITLINE_AUTH_FAILURE_RATE = env.str("CREDITLINE_AUTH_FAILURE_RATE", default="30/min")
# The proxies whose X-Forwarded-For is believed (addresses or networks, comma-separated); empty:
# the client address is REMOTE_ADDR (tenants/clients.py).
CREDITLINE_TRUSTED_PROXIES = env.list("CREDITLINE_TRUSTED_PROXIES", default=[])
# The vendor console's money rollups, the hourly reconciliation and rate-card traps (insights/).
CELERY_BEAT_SCHEDULE["insights.rollup_update"] = {
    "task": "insights.rollup_update",
    "schedule": 60.0,
}
CELERY_BEAT_SCHEDULE["insights.reconcile"] = {"task": "insights.reconcile", "schedule": 3600.0}
CELERY_BEAT_SCHEDULE["insights.contract_traps_store"] = {
    "task": "insights.contract_traps_store",
    "schedule": 3600.0,
}
CELERY_BEAT_SCHEDULE["metering.workflow_expire_idle"] = {
    "task": "metering.workflow_expire_idle",
    "schedule": 60.0,
}
# The rollups behind the portal's usage and the burn rate: fresh within a minute, exactly once
# however often they run (docs/architecture.md, "Rollups").
CELERY_BEAT_SCHEDULE["metering.usage_rollup_update"] = {
    "task": "metering.usage_rollup_update",
    "schedule": 30.0,
}
# Usage exports past their week (metering/exports.py), with their files kept in the database.
CELERY_BEAT_SCHEDULE["metering.usage_exports_purge"] = {
    "task": "metering.usage_exports_purge",
    "schedule": 3600.0,
}
CELERY_BEAT_SCHEDULE["ledger.debit_days_update"] = {
    "task": "ledger.debit_days_update",
    "schedule": 30.0,
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
}

# The transactional outbox (tenants/outbox.py): what the on-commit relay could not hand to the
# broker is sent by this sweep.
CELERY_BEAT_SCHEDULE["tenants.outbox_relay_due"] = {
    "task": "tenants.outbox_relay_due",
    "schedule": 30.0,
}

# Billing: the payment gateway ("fake" completes payments locally; "stripe" is real), Stripe's
# keys, and billing's periodic tasks.
BILLING_GATEWAY = env.str("BILLING_GATEWAY", default="fake")
# The currency a tenant without a subscription is billed in (billing.selectors).
BILLING_DEFAULT_CURRENCY = env.str("BILLING_DEFAULT_CURRENCY", default="USD")
# Days a past-due subscription keeps starting workflow runs (billing: subscription_invoices).
CREDITLINE_SUBSCRIPTION_GRACE_DAYS = env.int("CREDITLINE_SUBSCRIPTION_GRACE_DAYS", default=3)
STRIPE_SECRET_KEY = env.str("STRIPE_SECRET_KEY", default="")
STRIPE_WEBHOOK_SECRET = env.str("STRIPE_WEBHOOK_SECRET", default="")
CELERY_BEAT_SCHEDULE.update(
    {
        "billing.subscription_renew_due": {
            "task": "billing.subscription_renew_due",
            "schedule": 300.0,
        },
        "billing.contract_tranches_due": {
            "task": "billing.contract_tranches_due",
            "schedule": 3600.0,
        },
        "billing.contract_end_due": {"task": "billing.contract_end_due", "schedule": 3600.0},
        # Each contract month ends on its own contract's day: a daily look invoices the
        # overdraft of the months that ended (once each), issues what waits and reconciles.
        "billing.contract_invoices_due": {
            "task": "billing.contract_invoices_due",
            "schedule": 86400.0,
        },
        "billing.auto_topup_sweep": {"task": "billing.auto_topup_sweep", "schedule": 300.0},
        "billing.webhook_deliver_due": {"task": "billing.webhook_deliver_due", "schedule": 30.0},
        "billing.stripe_events_retry": {"task": "billing.stripe_events_retry", "schedule": 300.0},
        "billing.topups_expire_due": {"task": "billing.topups_expire_due", "schedule": 300.0},
    }
)
