"""Orderly settings: one module, every deployment choice read from the environment.

Each variable is documented in README.md ("Configuration").
"""
from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from celery.schedules import schedule

BASE_DIR = Path(__file__).resolve().parent.parent


def env_str(name: str, default: str | None = None) -> str:
    value = os.environ.get(name)
    if value is None or value == "":
        if default is None:
            raise RuntimeError(f"The environment variable {name} must be set.")
        return default
    return value


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return int(value)


def env_list(name: str, default: list[str]) -> list[str]:
    value = os.environ.get(name)
    if value is None:
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


DEBUG = env_bool("DEBUG", True)
# A development default only while DEBUG is on: production must set its own.
SECRET_KEY = env_str("SECRET_KEY", "orderly-insecure-development-key" if DEBUG else None)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])
VAR_DIR = Path(env_str("ORDERLY_VAR_DIR", str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "django_htmx",
    "crispy_forms",
    "crispy_bootstrap5",
    "bootstrap",
    "agents",
    "tickets",
    "feedback",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "tickets.api.middleware.BodySizeLimitMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "helpdesk.middleware.UserTimeZoneMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "helpdesk.urls"
WSGI_APPLICATION = "helpdesk.wsgi.application"
AUTH_USER_MODEL = "agents.User"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

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
                "helpdesk.context_processors.orderly",
            ],
        },
    },
]

# Database: SQLite (WAL, immediate transactions, busy timeout) unless DATABASE_URL says otherwise.
DATABASE_URL = os.environ.get("DATABASE_URL", "")
if DATABASE_URL:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60)}
    if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
        # JIT compilation costs more than it saves on Orderly's short queries
        # (about 110 ms on the KPI query over a million tickets).
        DATABASES["default"].setdefault("OPTIONS", {}).setdefault("options", "-c jit=off")
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(VAR_DIR / "orderly.sqlite3"),
        }
    }
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            # One writer at a time: every transaction takes the write lock at BEGIN,
            # so two services never interleave their read-then-write steps.
            "transaction_mode": "IMMEDIATE",
            "timeout": 30,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
    DATABASES["default"].setdefault("TEST", {})
DATABASES["default"]["ATOMIC_REQUESTS"] = False
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True

DATA_UPLOAD_MAX_MEMORY_SIZE = 1024 * 1024
ORDERLY_MAX_BODY_BYTES = 1024 * 1024  # API.md: bodies over 1 MiB answer 413 (fixed, not configurable)

EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "orderly@localhost")
# SMTP (with EMAIL_BACKEND=django.core.mail.backends.smtp.EmailBackend).
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "") if os.environ.get("EMAIL_HOST_USER") else ""
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10)

CRISPY_ALLOWED_TEMPLATE_PACKS = "bootstrap5"
CRISPY_TEMPLATE_PACK = "bootstrap5"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "tickets.api.errors.exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Orderly API",
    "DESCRIPTION": "General-process work orders: create, dispatch, lock, resolve, judge.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # Two choice sets share the field name "status": name each explicitly.
    "ENUM_NAME_OVERRIDES": {
        "AgentStatusEnum": "agents.models.Agent.Status",
        "DeliveryStatusEnum": "tickets.delivery_models.Delivery.Status",
    },
}

# Orderly's own rules.
ORDERLY_SWEEP_SECONDS = env_int("ORDERLY_SWEEP_SECONDS", 15)
ORDERLY_AWAY_GRACE_MINUTES = env_int("ORDERLY_AWAY_GRACE_MINUTES", 10)
# Length of a configured minute in real seconds (demos and system tests shorten it).
ORDERLY_SECONDS_PER_MINUTE = float(env_str("ORDERLY_SECONDS_PER_MINUTE", "60"))
ORDERLY_SWEEP_BATCH = env_int("ORDERLY_SWEEP_BATCH", 500)
ORDERLY_DISPATCH_BATCH = env_int("ORDERLY_DISPATCH_BATCH", 500)
# A process sends at most one dispatch nudge per this many milliseconds (0: one
# per change), plus one delayed to the window's end, so every change is still
# followed by a dispatch.
ORDERLY_DISPATCH_NUDGE_COALESCE_MS = env_int("ORDERLY_DISPATCH_NUDGE_COALESCE_MS", 100)
ORDERLY_PAGE_SIZE = env_int("ORDERLY_PAGE_SIZE", 50)
ORDERLY_DELIVERY_ATTEMPTS = env_int("ORDERLY_DELIVERY_ATTEMPTS", 5)
ORDERLY_DELIVERY_BACKOFF_SECONDS = env_int("ORDERLY_DELIVERY_BACKOFF_SECONDS", 10)
ORDERLY_WEBHOOK_TIMEOUT_SECONDS = env_int("ORDERLY_WEBHOOK_TIMEOUT_SECONDS", 10)
# Hosts outgoing callbacks and webhooks may reach (comma-separated; empty = any).
ORDERLY_OUTBOUND_ALLOWED_HOSTS = env_list("ORDERLY_OUTBOUND_ALLOWED_HOSTS", [])
ORDERLY_OUTBOUND_MAX_RESPONSE_BYTES = env_int("ORDERLY_OUTBOUND_MAX_RESPONSE_BYTES", 64 * 1024)
# Rate limits ("<n>/<second|minute|hour|day>" or "off"): sign-in per client
# address, ticket creation per user.
ORDERLY_THROTTLE_SIGNIN = env_str("ORDERLY_THROTTLE_SIGNIN", "60/minute")
ORDERLY_THROTTLE_CREATE = env_str("ORDERLY_THROTTLE_CREATE", "600/minute")
# Shared cache (rate-limit counters) when several web processes run, e.g.
# redis://127.0.0.1:6379/1; unset = per-process local memory.
ORDERLY_CACHE_URL = os.environ.get("ORDERLY_CACHE_URL", "")
if ORDERLY_CACHE_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                          "LOCATION": ORDERLY_CACHE_URL}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
# Where people reach the site: links in emails.
ORDERLY_BASE_URL = env_str("ORDERLY_BASE_URL", "http://127.0.0.1:8000").rstrip("/")

# Celery: kombu's filesystem transport (no server) unless CELERY_BROKER_URL names one.
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    _broker_dir = VAR_DIR / "broker"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "control_folder": str(_broker_dir / "control"),
        "processed_folder": str(_broker_dir / "processed"),
        "store_processed": False,
        "polling_interval": 0.25,
    }
    for _folder in ("queue", "control", "processed"):
        (_broker_dir / _folder).mkdir(parents=True, exist_ok=True)
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_BACKEND = None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = 60
CELERY_TASK_TIME_LIMIT = 90
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
_sweep = timedelta(seconds=ORDERLY_SWEEP_SECONDS)
# Every sweep is a database scan for what is due (STYLE.md 11); a run that is
# not picked up within one interval is dropped, because the next one re-derives
# the same work from the database.
CELERY_BEAT_SCHEDULE = {
    name: {
        "task": task,
        "schedule": schedule(_sweep),
        "options": {"expires": ORDERLY_SWEEP_SECONDS},
    }
    for name, task in {
        "dispatch-sweep": "tickets.dispatch_sweep",
        "breach-sweep": "tickets.breach_sweep",
        "lock-expiry-sweep": "tickets.lock_expiry_sweep",
        "away-reclaim-sweep": "tickets.away_reclaim_sweep",
        "auto-close-sweep": "tickets.auto_close_sweep",
        "callback-sweep": "tickets.callback_sweep",
        "delivery-sweep": "tickets.delivery_sweep",
        # KPI rollup of closed days (agents/kpi_rollup.py); a no-op once done.
        "kpi-rollup-sweep": "agents.kpi_rollup_sweep",
    }.items()
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "INFO"}},
}

if not DEBUG:
    SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", True)
    CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", True)
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 3600)
    SECURE_CONTENT_TYPE_NOSNIFF = True
    SECURE_REFERRER_POLICY = "same-origin"
