"""Settings for ScaleLab. Every value that varies comes from the environment here.

Without ``REDIS_URL`` the app runs embedded: one process, an in-process worker,
in-memory transports and SQLite. With it, Redis carries runs, sessions and the
job queue, and workers run as separate processes.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import dj_database_url

from .env import ConfigError, env_bool, env_int, env_list, env_str, env_url

BASE_DIR = Path(__file__).resolve().parent.parent

DEBUG = env_bool("DEBUG", True)
INSECURE_KEY = "scalelab-insecure-development-key-change-me"
SECRET_KEY = env_str("SECRET_KEY", INSECURE_KEY if DEBUG else "")
if not SECRET_KEY:
    raise ConfigError("SECRET_KEY must be set when DEBUG is off")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

REDIS_URL = env_url("REDIS_URL", ("redis", "rediss", "unix"))
EMBEDDED = not REDIS_URL

DATABASE_URL = env_url(
    "DATABASE_URL",
    ("sqlite", "postgres", "postgresql"),
    f"sqlite:///{BASE_DIR / 'db.sqlite3'}",
)
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60)}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    DATABASES["default"]["CONN_MAX_AGE"] = 0
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
    "django.middleware.security.SecurityMiddleware",
    "servestatic.middleware.ServeStaticMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "scalelab.middleware.content_security_policy",
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

STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
_plotly = importlib.util.find_spec("plotly")
STATICFILES_DIRS = [BASE_DIR / "static"]
if _plotly and _plotly.submodule_search_locations:
    STATICFILES_DIRS.append(
        ("plotly", Path(_plotly.submodule_search_locations[0]) / "package_data")
    )
SERVESTATIC_USE_FINDERS = True
SERVESTATIC_AUTOREFRESH = DEBUG

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
    SESSION_ENGINE = "django.contrib.sessions.backends.cache"
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
    "RUN_IDLE_S": env_int("SCALELAB_RUN_IDLE_S", 60, minimum=5, maximum=3600),
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
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"daphne": {"level": "WARNING"}, "celery": {"level": "WARNING"}},
}
