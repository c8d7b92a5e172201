"""Keep passwords out of error pages and logs, including those inside URLs.

Django's own filter hides settings named like secrets (``SECRET_KEY``,
``PASSWORD``), but not ``REDIS_URL``, ``DATABASE_URL``, the broker URL or a
cache's ``LOCATION``, whose passwords sit inside the value; Celery and redis-py
also log the URLs they connect to.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from django.template.defaultfilters import pprint as shown
from django.views.debug import ExceptionReporter, SafeExceptionReporterFilter

HIDDEN = SafeExceptionReporterFilter.cleansed_substitute
# scheme://user:password@ (the user may be empty, as in redis://:password@host).
_CREDENTIALS = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^\s:/@]*):[^\s/@]*@")


def redact(text: str) -> str:
    """Return ``text`` with the password of every URL in it hidden."""
    return _CREDENTIALS.sub(rf"\1:{HIDDEN}@", text)


class _Shown:
    """A value as the error page would show it, with its passwords hidden."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


def _without_credentials(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    text = shown(value)
    hidden = redact(text)
    return value if hidden == text else _Shown(hidden)


class CredentialsFilter(SafeExceptionReporterFilter):
    """Hide what Django hides, and the password of any URL in settings, request
    headers, cookies and a traceback's variables, before the page trims a long
    value (which could cut a URL before its "@")."""

    def cleanse_setting(self, key, value):
        return _without_credentials(super().cleanse_setting(key, value))

    def get_traceback_frame_variables(self, request, tb_frame):
        return [
            (name, _without_credentials(value))
            for name, value in super().get_traceback_frame_variables(request, tb_frame)
        ]


class CredentialsReporter(ExceptionReporter):
    """Hide the password of any URL anywhere on the error page: the exception's
    message and the source lines shown too."""

    def get_traceback_html(self):
        return redact(super().get_traceback_html())

    def get_traceback_text(self):
        return redact(super().get_traceback_text())


class CredentialsLogFilter(logging.Filter):
    """Hide the password of any URL in a log record, its traceback included."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        hidden = redact(message)
        if hidden != message:
            record.msg, record.args = hidden, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True
