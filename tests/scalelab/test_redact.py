"""Error pages and logs never show a password, even one inside a URL."""

from __future__ import annotations

import logging

import pytest
from django.test import Client
from django.urls import path

from scalelab.redact import CredentialsLogFilter, redact
from tests.scalelab.test_settings import manage

PASSWORDS = ("redis-pw", "broker-pw", "cache-pw", "db-pw", "local-pw", "message-pw")
CUT = "qqq"  # what a trimmed value would show of its password


@pytest.fixture
def debug_page(settings):
    settings.DEBUG = True
    settings.ROOT_URLCONF = __name__
    settings.REDIS_URL = "redis://:redis-pw@redis.internal:6379/0"
    settings.CELERY_BROKER_URL = "redis://scalelab:broker-pw@redis.internal:6379/0"
    settings.DATABASE_URL = "postgresql://scalelab:db-pw@db.internal/scalelab"
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": "redis://:cache-pw@redis.internal:6379/1",
        }
    }
    return Client(raise_request_exception=False)


@pytest.mark.django_db
@pytest.mark.parametrize("accept", ["text/html", "text/plain"])
def test_the_debug_error_page_shows_no_password_of_any_url(debug_page, accept):
    response = debug_page.get("/fail/", headers={"accept": accept})
    assert response.status_code == 500
    page = response.content.decode()
    assert "cannot reach redis://:********************@redis.internal" in page
    assert "scalelab:********************@redis.internal" in page  # the broker
    assert "scalelab:********************@db.internal" in page  # a variable
    for password in (*PASSWORDS, CUT):
        assert password not in page


def test_a_url_keeps_its_user_and_host_but_not_its_password():
    assert redact("to postgres://me:p%40ss:w0rd@db:5432/x and redis://:pw@r/0") == (
        "to postgres://me:********************@db:5432/x "
        "and redis://:********************@r/0"
    )
    assert redact("https://example.org/a@b and redis://r:6379") == (
        "https://example.org/a@b and redis://r:6379"
    )


def test_a_log_record_loses_the_passwords_of_its_message_and_traceback():
    try:
        raise ConnectionError("lost amqp://worker:message-pw@mq.internal//")
    except ConnectionError as exc:
        record = logging.LogRecord(
            "celery",
            logging.ERROR,
            __file__,
            1,
            "broker %s",
            ("redis://:redis-pw@r",),
            (type(exc), exc, exc.__traceback__),
        )
    assert CredentialsLogFilter().filter(record) is True
    text = logging.Formatter().format(record)
    assert "broker redis://:********************@r" in text
    assert "amqp://worker:********************@mq.internal//" in text
    for password in PASSWORDS:
        assert password not in text


def test_the_log_of_a_running_app_shows_no_password():
    code = (
        "import logging; log = logging.getLogger('redis');"
        "log.warning('connecting to %s', 'redis://:redis-pw@redis.internal:6379');"
        "log.error('lost', exc_info=ConnectionError('amqp://u:broker-pw@mq.internal'))"
    )
    done = manage("shell", "--no-imports", "-c", code)
    assert done.returncode == 0, done.stderr
    assert "connecting to redis://:********************@redis.internal" in done.stderr
    assert "amqp://u:********************@mq.internal" in done.stderr
    for password in PASSWORDS:
        assert password not in done.stderr


# Far from PASSWORDS above: the error page shows the lines around a frame's.
def fail(request):
    dsn = "postgresql://scalelab:local-pw@db.internal/scalelab"  # noqa: F841 - shown
    options = {"location": "rediss://default:local-pw@cache.internal"}  # noqa: F841
    # The page trims a long value at 4096 characters: here, inside the password.
    long = "x" * 4083 + "redis://:qqqqqqqq-pw@cache.internal"  # noqa: F841
    raise ConnectionError("cannot reach redis://:message-pw@redis.internal:6379/0")


urlpatterns = [path("fail/", fail)]
