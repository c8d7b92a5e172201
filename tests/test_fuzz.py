"""Hostile input through every door: never a 5xx, never a traceback in the log.

Hypothesis sends the run and curve API, the answer endpoint, lesson import and the
run websocket bodies and messages of every shape: declared fields with wrong values,
undeclared fields, deep nesting, huge values, bytes that are not text, damaged zips.
Every answer must be a 4xx (or a success) that says what was wrong in a few words.
"""

from __future__ import annotations

import importlib
import io
import json
import logging
import zipfile

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator
from django.conf import settings as django_settings
from django.contrib.auth.models import User
from django.core.cache import cache
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lessons.models import Lesson, Module, Question
from scalelab.asgi import application
from simulations.engines import REGISTRY, get_engine
from simulations.models import Run

EXAMPLES = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
ERROR_BYTES = 2000  # an error answer names a field and what it accepts, no more

CACHE = get_engine("cache")
PARAMS = [p.name for p in CACHE.params]
COMMANDS = [c.name for c in CACHE.commands]
ARGS = sorted({a.name for c in CACHE.commands for a in c.args})

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
)
JSON = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)


def fields(**named) -> st.SearchStrategy[str]:
    """JSON objects of some of the ``named`` fields (or any value), and others."""
    return st.builds(
        lambda declared, extra: json.dumps({**extra, **declared}),
        st.fixed_dictionaries({}, optional={k: v | JSON for k, v in named.items()}),
        st.dictionaries(st.text(max_size=10), JSON, max_size=2),
    )


HOSTILE = st.one_of(
    st.integers(1, 5000).map(lambda n: "[" * n + "]" * n),
    st.integers(1, 2000).map(lambda n: '{"a": ' * n + "1" + "}" * n),
    st.integers(0, 40_000).map(lambda n: '{"kind": "' + "k" * n + '"}'),
    st.integers(0, 40_000).map(lambda n: '{"' + "k" * n + '": 1}'),
    st.integers(300, 5000).map(lambda n: '{"seed": ' + "9" * n + "}"),
    st.sampled_from(['{"seed": NaN}', '{"seed": 1e999}', "{", "", "null", "[]"]),
    st.text(max_size=100),
)
TEXTS = HOSTILE | JSON.map(json.dumps)
BODIES = TEXTS.map(str.encode) | st.binary(max_size=200)
CONTENT_TYPES = st.sampled_from(
    [
        "application/json",
        "application/json; charset=utf-8",
        "application/json; charset=latin-1",
        "text/plain",
        "application/x-www-form-urlencoded",
    ]
)

RUN_BODIES = fields(
    kind=st.sampled_from(sorted(REGISTRY)),
    params=st.dictionaries(
        st.sampled_from(PARAMS) | st.text(max_size=8), JSON, max_size=4
    ),
    seed=st.integers(-5, 2**40),
    lesson=st.text(max_size=120),
)
CURVE_BODIES = fields(
    keys=st.integers(0, 2_000_000),
    zipf_s=st.floats(-1, 3),
    requests=st.integers(0, 3_000_000),
    seed=st.integers(-5, 2**40),
)
ANSWER_BODIES = fields(choice=st.integers(-2, 3), value=st.floats())


def tracebacks(caplog) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.levelno >= logging.ERROR and record.exc_info
    ]


@pytest.fixture
def no_counts():
    """Start and end with no rate counts or held imports in the cache."""
    cache.clear()
    yield
    cache.clear()


def check_http(response, caplog) -> None:
    # A 503 with Retry-After is no failure: the site's cap on runs or curve jobs,
    # reached as the examples pile up jobs that no worker takes.
    if response.status_code == 503:
        assert response.has_header("Retry-After"), response.content[:300]
    else:
        assert response.status_code < 500, response.content[:300]
    assert not tracebacks(caplog)
    if 400 <= response.status_code < 500 and response["Content-Type"].startswith(
        "application/json"
    ):
        assert len(response.content) < ERROR_BYTES, response.content[:300]
        errors = response.json()["errors"]
        assert errors and all(isinstance(v, str) for v in errors.values())


# The HTTP API ---------------------------------------------------------------------


@pytest.fixture
def answer_urls(db):
    module = Module.objects.create(slug="fuzz", title="Fuzz")
    lesson = Lesson.objects.create(
        slug="fuzz",
        title="Fuzz",
        module=module,
        body="# Fuzz\n",
        engine="cache",
        status=Lesson.Status.PUBLISHED,
    )
    choices = [
        {"text": "a", "correct": True, "why": "Yes."},
        {"text": "b", "correct": False, "why": "No."},
    ]
    Question.objects.create(lesson=lesson, order=0, prompt="?", choices=choices)
    Question.objects.create(
        lesson=lesson, order=1, kind="number", prompt="?", answer=2.0, tolerance=0.1
    )
    return ["/lessons/fuzz/questions/0/", "/lessons/fuzz/questions/1/"]


@pytest.mark.django_db
@EXAMPLES
@given(
    target=st.sampled_from(["runs", "curves", "answer-0", "answer-1"]),
    declared=st.booleans(),
    data=st.data(),
    content_type=CONTENT_TYPES,
)
def test_no_body_makes_the_api_fail(
    answer_urls, no_counts, caplog, target, declared, data, content_type
):
    caplog.clear()
    url, shaped = {
        "runs": ("/api/runs/", RUN_BODIES),
        "curves": ("/api/curves/", CURVE_BODIES),
        "answer-0": (answer_urls[0], ANSWER_BODIES),
        "answer-1": (answer_urls[1], ANSWER_BODIES),
    }[target]
    body = data.draw(shaped.map(str.encode) if declared else BODIES)
    client = Client(raise_request_exception=False)
    # generic() sends the bytes as they are (post() would re-encode them).
    response = client.generic("POST", url, data=body, content_type=content_type)
    check_http(response, caplog)


# Lesson import ----------------------------------------------------------------------


def lesson_file(meta: dict) -> str:
    # JSON strings are TOML basic strings (except for lone surrogates: TOML refuses).
    lines = [f"{key} = {json.dumps(value)}" for key, value in meta.items()]
    return "\n".join(["+++", *lines, "+++", "# Body", ""])


VALID = {
    "slug": "fuzzed",
    "title": "Fuzzed",
    "module": "fuzz",
    "module_title": "Fuzz",
    "module_order": 1,
    "status": "draft",
    "engine": "cache",
}


def _zip(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return buffer.getvalue()


GOOD_ZIP = _zip({"fuzzed.md": lesson_file(VALID)})
META = st.fixed_dictionaries(
    {},
    optional={
        "slug": st.sampled_from(["fuzzed", "other", "s" * 60]) | st.text(max_size=90),
        "title": st.text(max_size=260),
        "module": st.sampled_from(["fuzz", "caching"]) | st.text(max_size=60),
        "module_title": st.text(max_size=130),
        "module_order": st.integers(-1, 20_000),
        "status": st.sampled_from(["draft", "published", "gone"]),
        "summary": st.text(max_size=310),
        "engine": st.sampled_from(["cache", "queue", "nope"]),
        "glossary": st.lists(st.text(max_size=5), max_size=2),
        "preset": st.dictionaries(st.sampled_from(PARAMS), JSON, max_size=2),
    },
).map(lambda meta: {**VALID, **meta})


def _mutated(changes: list[tuple[int, int]]) -> bytes:
    data = bytearray(GOOD_ZIP)
    for position, value in changes:
        data[position % len(data)] = value
    return bytes(data)


UPLOADS = st.one_of(
    META.map(lambda meta: ("fuzzed.md", lesson_file(meta).encode())),
    st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), max_size=6).map(
        lambda changes: ("fuzzed.zip", _mutated(changes))
    ),
    st.binary(max_size=300).map(lambda data: ("random.zip", data)),
    st.tuples(st.sampled_from(["a.md", "b.txt", "c" * 300 + ".md"]), st.binary()),
    st.dictionaries(
        st.sampled_from(["x.md", "dir/y.md", ".hidden.md", "z.txt", "../w.md"]),
        META.map(lesson_file),
        min_size=1,
    ).map(lambda files: ("many.zip", _zip(files))),
)


@pytest.fixture
def staff_client(db):
    client = Client(raise_request_exception=False)
    client.force_login(User.objects.create_superuser("root", password="pw-for-tests"))
    return client


@pytest.mark.django_db
@EXAMPLES
@given(uploads=st.lists(UPLOADS, min_size=1, max_size=3))
def test_no_upload_makes_the_import_fail(staff_client, no_counts, caplog, uploads):
    caplog.clear()
    files = []
    for name, data in uploads:
        handle = io.BytesIO(data)
        handle.name = name
        files.append(handle)
    page = staff_client.post("/admin/lessons/lesson/import/", {"files": files})
    assert page.status_code in (200, 302, 400), page.status_code
    assert not tracebacks(caplog)


# The run websocket -------------------------------------------------------------------

MESSAGES = st.one_of(
    fields(
        type=st.sampled_from(
            ["pause", "resume", "speed", "set", "command", "reset", "stop", "seen"]
        ),
        value=st.sampled_from([0.25, 1, 8, 3]) | st.integers(),
        name=st.sampled_from(PARAMS + COMMANDS),
        args=st.dictionaries(st.sampled_from(ARGS) | st.text(max_size=5), JSON),
        seq=st.integers(-3, 10**7),
        ref=st.text(max_size=120) | st.integers(),
    ),
    TEXTS,
    st.binary(max_size=100),
).filter(len)  # a frame carries something (the test communicator insists)


@pytest.fixture
def watched_run(transactional_db):
    """Return the path of a running run and the session key of its owner."""
    store = importlib.import_module(django_settings.SESSION_ENGINE).SessionStore()
    store["visitor"] = "fuzzer"
    store.save()
    params = CACHE.validate_params({})
    run = Run.objects.create(
        kind="cache", params=params, status=Run.Status.RUNNING, visitor="fuzzer"
    )
    return f"/ws/runs/{run.id}/", store.session_key


async def exchange(path: str, key: str, messages: list) -> list[dict]:
    """Send ``messages`` on one socket; return what came back up to a last pong."""
    comm = WebsocketCommunicator(
        application,
        path,
        headers=[
            (b"origin", b"http://localhost"),
            (b"host", b"localhost"),
            (b"cookie", f"sessionid={key}".encode()),
        ],
    )
    connected, _ = await comm.connect(timeout=5)
    assert connected
    for message in messages:
        if isinstance(message, bytes):
            await comm.send_to(bytes_data=message)
        else:
            await comm.send_to(text_data=message)
    await comm.send_json_to({"type": "ping", "ref": "last"})
    replies = []
    while True:
        output = await comm.receive_output(timeout=5)
        if output["type"] == "websocket.close":
            break
        replies.append(json.loads(output["text"]))
        if replies[-1] == {"type": "pong", "ref": "last"}:
            break
    await comm.disconnect()
    return replies


@pytest.mark.timeout(60)
@EXAMPLES
@given(messages=st.lists(MESSAGES, min_size=1, max_size=8))
def test_no_message_makes_the_socket_fail(watched_run, no_counts, caplog, messages):
    caplog.clear()
    replies = async_to_sync(exchange)(*watched_run, messages)
    assert replies[0]["type"] == "hello"
    assert not tracebacks(caplog)
    for reply in replies:
        if reply["type"] == "error":
            assert len(json.dumps(reply)) < ERROR_BYTES
            assert reply["message"] != "the server could not handle this message"
            assert isinstance(reply["field"], str) and reply["message"]


@pytest.mark.django_db(transaction=True)
@EXAMPLES
@given(
    path=st.text(max_size=60).map(lambda text: "/" + text)
    | st.text(max_size=40).map(lambda text: "/ws/runs/" + text + "/"),
    origin=st.sampled_from(
        [b"http://localhost", b"http://localhost:9999", b"null", b"\xff", b""]
    ),
)
def test_no_path_or_origin_makes_the_handshake_fail(caplog, path, origin):
    caplog.clear()

    async def handshake():
        comm = WebsocketCommunicator(
            application, path, headers=[(b"origin", origin), (b"host", b"localhost")]
        )
        connected, _ = await comm.connect(timeout=5)
        await comm.disconnect()
        return connected

    assert not async_to_sync(handshake)()
    assert not tracebacks(caplog)
