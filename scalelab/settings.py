"""Settings for ScaleLab. Every value that varies comes from the environment here.

Without ``REDIS_URL`` the app runs embedded: one process, an in-process worker,
in-memory transports and SQLite. With it, Redis carries runs, the cache (sessions
included; the database keeps them) and the job queue, and workers run as separate
processes.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

import dj_database_url

from .env import ConfigError, env_bool, env_int, env_list, env_str, env_url
from .secret import secret_key_from_file

BASE_DIR = Path(__file__).resolve().parent.parent

DEBUG = env_bool("DEBUG", False)
# The development key of earlier releases, which is public (scalelab.E001).
INSECURE_KEY = "scalelab-insecure-development-key-change-me"
# Without SECRET_KEY, one machine's processes share a key made on first start.
SECRET_KEY_FILE = Path(env_str("SECRET_KEY_FILE") or BASE_DIR / ".secret_key")
SECRET_KEY = env_str("SECRET_KEY") or secret_key_from_file(SECRET_KEY_FILE)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

REDIS_URL = env_url("REDIS_URL", ("redis", "rediss", "unix"))
EMBEDDED = not REDIS_URL

DATABASE_URL = env_url(
    "DATABASE_URL",
    ("sqlite", "postgres", "postgresql"),
    f"sqlite:///{BASE_DIR / 'db.sqlite3'}",
)
# No persistent connections: under ASGI each request's sync code may run on a
# thread of its own, and a connection kept per thread is a connection leaked (300
# students joining left 74 open). PostgreSQL connections come from a pool of at
# most SCALELAB_DB_POOL per process instead, so a class cannot exhaust the server.
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=0)}
if DATABASES["default"]["ENGINE"].endswith("postgresql"):
    DATABASES["default"]["OPTIONS"] = {
        "pool": {
            "min_size": 1,
            "max_size": env_int("SCALELAB_DB_POOL", 10, minimum=1, maximum=500),
            "timeout": 20,
        }
    }
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    # A file, not memory: tests run workers on threads that share the database.
    DATABASES["default"]["TEST"] = {
        "NAME": env_str("SCALELAB_TEST_DB", str(BASE_DIR / ".test-db.sqlite3"))
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "servestatic",
    "django.contrib.staticfiles",
    "channels",
    "simulations",
    "lessons",
]

MIDDLEWARE = [
    "scalelab.middleware.TrustedProxyMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "scalelab.staticfiles.StaticMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "scalelab.middleware.ContentSecurityPolicyMiddleware",
]

ROOT_URLCONF = "scalelab.urls"
ASGI_APPLICATION = "scalelab.asgi.application"

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

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

# `collectstatic` (`make run` runs it) writes hashed, brotli and gzip copies here;
# servestatic serves them as immutable (ten years), and the sources (its finders)
# under their plain names (scalelab.staticfiles).
STATIC_URL = "/static/"
STATIC_ROOT = Path(env_str("STATIC_ROOT") or BASE_DIR / "staticfiles")
STATICFILES_DIRS = [BASE_DIR / "static"]
STATICFILES_FINDERS = [
    "django.contrib.staticfiles.finders.FileSystemFinder",
    "django.contrib.staticfiles.finders.AppDirectoriesFinder",
    "scalelab.staticfiles.PlotlyFinder",
]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "scalelab.staticfiles.StaticStorage"},
}
SERVESTATIC_USE_FINDERS = True
SERVESTATIC_AUTOREFRESH = DEBUG
# The finders serve the plain names; a second copy of each would only double the
# compression time of `collectstatic`.
SERVESTATIC_KEEP_ONLY_HASHED_FILES = True

if EMBEDDED:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    SESSION_ENGINE = "django.contrib.sessions.backends.db"
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
        }
    }
    # The database is the record of sessions, Redis only their cache: a Redis
    # restart must not sign everyone out, nor take their runs from their owners.
    SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"
# Frames travel through the run transport (simulations.transport), not a channel
# layer: there is none to configure.

# Celery: embedded mode uses the in-memory transport and an in-process worker.
CELERY_BROKER_URL = REDIS_URL or "memory://localhost/"
CELERY_BROKER_TRANSPORT_OPTIONS = {"polling_interval": 0.05} if EMBEDDED else {}
CELERY_TASK_TIME_LIMIT = None  # set per task
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True

# Runs: limits and pacing.
SCALELAB = {
    "FRAME_HZ": env_int("SCALELAB_FRAME_HZ", 10, minimum=1, maximum=30),
    "RUN_MAX_LIFE_S": env_int(
        "SCALELAB_RUN_MAX_LIFE_S", 1800, minimum=10, maximum=86_400
    ),
    "RUN_IDLE_S": env_int("SCALELAB_RUN_IDLE_S", 15, minimum=5, maximum=3600),
    # A class session's join code stops working this many hours after it starts.
    "CLASS_HOURS": env_int("SCALELAB_CLASS_HOURS", 4, minimum=1, maximum=48),
    # Members of a live class are counted per class, not per address: each has
    # room for this many live runs (twice as many new ones a minute).
    "CLASS_RUNS_PER_MEMBER": env_int(
        "SCALELAB_CLASS_RUNS_PER_MEMBER", 2, minimum=1, maximum=100
    ),
    "RUNS_PER_VISITOR": env_int(
        "SCALELAB_RUNS_PER_VISITOR", 3, minimum=1, maximum=1000
    ),
    "REPLAY_FRAMES": env_int("SCALELAB_REPLAY_FRAMES", 300, minimum=10, maximum=10_000),
    "CHECKPOINT_S": env_int("SCALELAB_CHECKPOINT_S", 2, minimum=1, maximum=60),
    "LEASE_S": env_int("SCALELAB_LEASE_S", 3, minimum=2, maximum=60),
    "WORKER_RUNS": env_int("SCALELAB_WORKER_RUNS", 1000, minimum=1, maximum=10_000),
    "WORKER_THREADS": env_int("SCALELAB_WORKER_THREADS", 8, minimum=1, maximum=200),
    "CHECKPOINT_RETENTION_H": env_int(
        "SCALELAB_CHECKPOINT_RETENTION_H", 24, minimum=0, maximum=8760
    ),
    # Limits per client address, on top of the per-visitor quota. The defaults let
    # a class of 60 behind one school address work: each student's run, a rerun,
    # and everyone signing up in the same lesson.
    "ADDRESS_LIVE_RUNS": env_int(
        "SCALELAB_ADDRESS_LIVE_RUNS", 200, minimum=1, maximum=100_000
    ),
    "ADDRESS_RUNS_PER_MIN": env_int(
        "SCALELAB_ADDRESS_RUNS_PER_MIN", 120, minimum=1, maximum=100_000
    ),
    "ADDRESS_CURVE_JOBS": env_int(
        "SCALELAB_ADDRESS_CURVE_JOBS", 10, minimum=1, maximum=10_000
    ),
    "ADDRESS_SIGNUPS_PER_H": env_int(
        "SCALELAB_ADDRESS_SIGNUPS_PER_H", 100, minimum=1, maximum=100_000
    ),
    "ADDRESS_SIGNINS_PER_MIN": env_int(
        "SCALELAB_ADDRESS_SIGNINS_PER_MIN", 60, minimum=1, maximum=100_000
    ),
    # Caps for the whole site, sized to what the workers can carry: one worker on
    # two cores keeps 300 runs at 10 frames/s on time (docs/performance.md), and a
    # curve job holds a core while it computes.
    "MAX_LIVE_RUNS": env_int("SCALELAB_MAX_LIVE_RUNS", 300, minimum=1, maximum=100_000),
    "MAX_CURVE_JOBS": env_int("SCALELAB_MAX_CURVE_JOBS", 2, minimum=1, maximum=1000),
}
# Proxies whose X-Forwarded-For entry names the client (scalelab.limits).
TRUSTED_PROXIES = env_list("SCALELAB_TRUSTED_PROXIES", [])
for _proxy in TRUSTED_PROXIES:
    try:
        ipaddress.ip_address(_proxy)
    except ValueError:
        raise ConfigError(
            f"SCALELAB_TRUSTED_PROXIES must be comma-separated IP addresses; "
            f"{_proxy[:60]!r} is not one"
        ) from None
# A rate limit the cache cannot count lets the request through: the run and curve
# caps, counted in the database, still hold.
RATELIMIT_FAIL_OPEN = True

# HTTPS: browsers reach the site over TLS, usually ended by a proxy, which must be
# listed in SCALELAB_TRUSTED_PROXIES for its X-Forwarded-Proto to be believed.
HTTPS = env_bool("HTTPS", False)
HSTS_SECONDS = env_int("HSTS_SECONDS", 31_536_000, minimum=0, maximum=63_072_000)
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = SECURE_SSL_REDIRECT = HTTPS
SECURE_HSTS_SECONDS = HSTS_SECONDS if HTTPS else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE_HSTS_PRELOAD = bool(SECURE_HSTS_SECONDS)
if HTTPS and TRUSTED_PROXIES:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# Error pages and logs hide the password inside any URL (scalelab.redact).
DEFAULT_EXCEPTION_REPORTER = "scalelab.redact.CredentialsReporter"
DEFAULT_EXCEPTION_REPORTER_FILTER = "scalelab.redact.CredentialsFilter"
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"credentials": {"()": "scalelab.redact.CredentialsLogFilter"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "filters": ["credentials"]}
    },
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        # Django's own console handler (with DEBUG on) would print its records
        # unfiltered, and twice: they go to the root's handler only.
        "django": {"handlers": []},
        "daphne": {"level": "WARNING"},
        "celery": {"level": "WARNING"},
    },
}
