"""Test overrides: only what tests must change (STYLE.md 17)."""
from .settings import *  # noqa: F401,F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
# Tests call services and task functions directly; nudges go nowhere.
CELERY_BROKER_URL = "memory://"
CELERY_BROKER_TRANSPORT_OPTIONS = {}
CELERY_TASK_ALWAYS_EAGER = False
LOGGING = {"version": 1, "disable_existing_loggers": False}
# Rate limits off except in the tests of rate limits (they override these).
ORDERLY_THROTTLE_SIGNIN = "off"
ORDERLY_THROTTLE_CREATE = "off"
# Every change sends its own dispatch nudge (tests count them); the folding
# is tested with an override.
ORDERLY_DISPATCH_NUDGE_COALESCE_MS = 0
