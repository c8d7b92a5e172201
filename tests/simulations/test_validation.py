"""Declared JSON input: the HTTP bodies and websocket messages, checked in one place."""

from __future__ import annotations

import json

import pytest
from django.test import RequestFactory

from lessons.models import Question
from lessons.services import load_directory
from simulations.engines.base import EngineError
from simulations.models import CurveJob, Run
from simulations.runs.controls import control_parse
from simulations.validation import (
    ECHO,
    MAX_BODY,
    MAX_DEPTH,
    MESSAGES,
    RUN_CREATE,
    MediaTypeError,
    json_body,
    json_object,
    message_ref,
    validate,
)

DEEP = "[" * 5000 + "]" * 5000  # deep enough to exhaust a recursive parser


def refusal(spec, value, **env) -> EngineError:
    with pytest.raises(EngineError) as caught:
        validate(spec, value, **env)
    return caught.value


@pytest.fixture
def choice_question(db):
    """Return the answer URL of a choice question and its choices' indexes."""
    load_directory()
    question = Question.objects.filter(
        kind="choice", lesson__status="published"
    ).first()
    indexes = ", ".join(str(i) for i in range(len(question.choices)))
    return f"/lessons/{question.lesson.slug}/questions/{question.order}/", indexes


def post(client, url, text):
    return client.post(url, data=text, content_type="application/json")


# Decoding ---------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    "text",
    [
        DEEP,
        '{"kind": "cache", "params": ' + "[" * 2000 + "]" * 2000 + "}",
        '{"a": ' * 20 + "1" + "}" * 20,
    ],
    ids=["arrays", "inside-params", "objects"],
)
@pytest.mark.parametrize("endpoint", ["runs", "curves", "answer"])
def test_deeply_nested_json_is_a_400_naming_the_body_on_every_endpoint(
    client, choice_question, endpoint, text
):
    answer_url = choice_question[0]
    url = {"runs": "/api/runs/", "curves": "/api/curves/", "answer": answer_url}
    response = post(client, url[endpoint], text)
    assert response.status_code == 400
    assert response.json() == {
        "errors": {
            "body": "the request body must be a JSON object nested at most "
            f"{MAX_DEPTH} levels deep"
        }
    }
    assert not Run.objects.exists() and not CurveJob.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("endpoint", ["/api/runs/", "/api/curves/"])
def test_a_body_over_the_size_limit_is_a_400_naming_the_body(client, endpoint):
    text = '{"lesson": "' + "a" * MAX_BODY + '"}'
    response = post(client, endpoint, text)
    assert response.status_code == 400
    assert f"at most {MAX_BODY} bytes" in response.json()["errors"]["body"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "application/x-www-form-urlencoded",
        "application/json; charset=latin-1",
    ],
)
@pytest.mark.parametrize("endpoint", ["runs", "curves", "answer"])
def test_a_body_not_sent_as_json_is_refused_naming_the_type_it_needs(
    client, choice_question, endpoint, content_type
):
    url = {"runs": "/api/runs/", "curves": "/api/curves/", "answer": choice_question[0]}
    body = '{"kind": "cache"}' if endpoint == "runs" else "{}"
    response = client.post(url[endpoint], data=body, content_type=content_type)
    assert response.status_code in (400, 415)
    assert response.json() == {
        "errors": {
            "body": "the request body must be sent as application/json (UTF-8); it "
            f"was sent as {content_type}"
        }
    }
    assert not Run.objects.exists() and not CurveJob.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("endpoint", ["runs", "curves", "answer"])
def test_a_body_not_sent_as_json_is_a_415(client, choice_question, endpoint):
    url = {"runs": "/api/runs/", "curves": "/api/curves/", "answer": choice_question[0]}
    response = client.post(url[endpoint], data="{}", content_type="text/plain")
    assert response.status_code == 415


def test_a_json_body_may_name_its_charset_and_an_empty_one_is_empty():
    factory = RequestFactory()
    sent = factory.post(
        "/", data='{"seed": 1}', content_type="application/json; charset=UTF-8"
    )
    assert json_body(sent) == {"seed": 1}
    assert json_body(factory.post("/", data="", content_type="text/plain")) == {}
    with pytest.raises(MediaTypeError) as caught:
        json_body(factory.post("/", data="{}", content_type=""))
    assert caught.value.message.endswith("it was sent with no Content-Type")


def test_a_body_declared_too_large_is_refused_before_it_is_read():
    request = RequestFactory().post(
        "/", data="{}", content_type="application/json", CONTENT_LENGTH="10000000"
    )
    with pytest.raises(EngineError) as caught:
        json_body(request)
    assert caught.value.field == "body"
    assert caught.value.message == (
        f"the request body must be at most {MAX_BODY} bytes of JSON; it has 10000000"
    )


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("url", "body", "field", "words"),
    [
        ("/api/runs/", {"kind": "cache", "lesson": "a" * 15_000}, "lesson", "a slug"),
        ("/api/runs/", {"kind": "k" * 15_000}, "kind", "kinds: balancer, cache"),
        ("/api/runs/", {"k" * 15_000: 1}, "k" * ECHO, "its fields: kind, params"),
        (
            "/api/runs/",
            {"kind": "cache", "params": {"capacity": "x" * 15_000}},
            "params.capacity",
            "capacity must be an integer from 1 to 1000000",
        ),
        (
            "/api/runs/",
            {"kind": "cache", "params": {"p" * 15_000: 1}},
            "params." + "p" * ECHO,
            "its parameters: keys, zipf_s",
        ),
        (
            "/api/runs/",
            {"kind": "cache", "seed": [1] * 5000},
            "seed",
            "an integer from 0",
        ),
        ("/api/curves/", {"keys": "1" * 15_000}, "keys", "an integer from 10"),
        ("/api/runs/", {"kind": "cache", "seed": 1e308 * 10}, "body", "finite"),
    ],
)
def test_a_huge_value_is_never_echoed_back_whole(client, url, body, field, words):
    text = json.dumps(body).replace("Infinity", "1" * 15_000 + "e9")
    response = post(client, url, text)
    assert response.status_code == 400
    assert len(response.content) < 1000
    ((named, message),) = response.json()["errors"].items()
    assert named.startswith(field)
    assert words in message


def test_a_long_value_is_quoted_by_its_start_and_its_length():
    error = refusal(
        MESSAGES, {"type": "set", "name": "y" * 500, "value": 1}, kind="cache"
    )
    assert error.field == "y" * ECHO + "... (500 characters)"
    assert error.message.startswith(
        "cache has no parameter '" + "y" * ECHO + "'... (500 characters); its "
        "parameters: keys, zipf_s"
    )


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ('{"kind": NaN}', "NaN is not a JSON number"),
        ('{"kind": -Infinity}', "-Infinity is not a JSON number"),
        ('{"seed": 1e999}', "JSON numbers must be finite"),
        ("[1, 2]", "must be a JSON object; got an array"),
        ('"cache"', "must be a JSON object; got a string"),
        ("{", "not valid JSON"),
        (b'{"kind": "\xff"}', "not valid UTF-8"),
    ],
)
def test_text_that_is_not_a_json_object_of_finite_numbers_is_refused(text, words):
    with pytest.raises(EngineError) as caught:
        json_object(text)
    assert caught.value.field == "body"
    assert words in caught.value.message


def test_brackets_inside_strings_are_not_nesting():
    text = '{"lesson": "' + "[{" * 100 + '\\"]"}'
    assert json_object(text) == {"lesson": "[{" * 100 + '"]'}


def test_nesting_up_to_the_limit_is_decoded():
    text = '{"a": ' * (MAX_DEPTH - 1) + "{}" + "}" * (MAX_DEPTH - 1)
    value = json_object(text)
    for _ in range(MAX_DEPTH - 1):
        value = value["a"]
    assert value == {}


# The run and curve bodies -----------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("url", "body", "field", "words"),
    [
        ("/api/runs/", '{"kind": "cache", "seed": true}', "seed", "got True"),
        ("/api/runs/", '{"kind": "cache", "seed": "5"}', "seed", "an integer from 0"),
        ("/api/runs/", '{"kind": "cache", "seed": 1.5}', "seed", "an integer from 0"),
        (
            "/api/runs/",
            '{"kind": "cache", "params": {"capacity": true}}',
            "params.capacity",
            "an integer from 1 to 1000000",
        ),
        ("/api/curves/", '{"keys": true}', "keys", "an integer from 10 to 1000000"),
        ("/api/curves/", '{"seed": false}', "seed", "an integer from 0"),
        ("/api/curves/", '{"zipf_s": "0.9"}', "zipf_s", "a number from 0 to 2.5"),
    ],
)
def test_bools_and_strings_are_not_numbers(client, url, body, field, words):
    response = post(client, url, body)
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert list(errors) == [field]
    assert words in errors[field]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("url", "body", "field", "words"),
    [
        (
            "/api/runs/",
            '{"kind": "cache", "owner": 1}',
            "owner",
            "the request body has no field 'owner'; its fields: kind, params, seed, "
            "lesson",
        ),
        (
            "/api/curves/",
            '{"size": 3}',
            "size",
            "its fields: keys, zipf_s, requests, seed",
        ),
    ],
)
def test_an_unknown_field_is_named_with_the_allowed_ones(
    client, url, body, field, words
):
    response = post(client, url, body)
    assert response.status_code == 400
    assert words in response.json()["errors"][field]


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({}, "kind", "the request body needs kind: one of balancer, cache, "),
        ({"kind": None}, "kind", "needs kind"),
        ({"kind": ["cache"]}, "kind", "kind must be one of balancer, cache, "),
        ({"kind": "cache", "params": 3}, "params", "an object of cache's parameters"),
        ({"kind": "cache", "lesson": "no spaces"}, "lesson", "a slug"),
        ({"kind": "cache", "lesson": "x" * 101}, "lesson", "at most 100 characters"),
        ({"kind": "cache", "params": {"capacity": "many"}}, "params.capacity", "1"),
        ({"kind": "cache", "params": {"nope": 1}}, "params.nope", "keys, zipf_s"),
    ],
)
def test_a_run_body_error_names_the_field_and_what_it_accepts(body, field, words):
    error = refusal(RUN_CREATE, body)
    assert error.field == field
    assert words in error.message


def test_a_run_body_comes_back_normalised_with_defaults():
    body = validate(RUN_CREATE, {"kind": "cache", "params": {"capacity": "250"}})
    assert body["kind"] == "cache" and body["seed"] is None and body["lesson"] == ""
    assert body["params"]["capacity"] == 250
    assert body["params"]["keys"] == 10_000
    body = validate(RUN_CREATE, {"kind": "cache", "seed": 7, "lesson": "lru-1"})
    assert body["seed"] == 7 and body["lesson"] == "lru-1"


# The lesson answer ------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ('{"choice": true}', "choice", "choice must be one of {indexes}; got True"),
        ('{"choice": "0"}', "choice", "choice must be one of {indexes}; got '0'"),
        ('{"choice": 99}', "choice", "choice must be one of {indexes}; got 99"),
        ("{}", "choice", "the answer needs choice: one of {indexes}"),
        ('{"choice": 0, "value": 3}', "value", "its fields: choice"),
        ("[0]", "body", "must be a JSON object"),
    ],
)
def test_a_bad_answer_is_a_400_naming_the_field(
    client, choice_question, body, field, words
):
    url, indexes = choice_question
    response = post(client, url, body)
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert list(errors) == [field]
    assert words.format(indexes=indexes) in errors[field]


@pytest.mark.django_db
def test_a_number_answer_must_be_a_finite_number_not_a_bool(client):
    load_directory()
    # A question with a fixed answer (a drawn one's depends on the visitor).
    question = Question.objects.filter(
        kind="number", formula="", lesson__status="published"
    ).first()
    url = f"/lessons/{question.lesson.slug}/questions/{question.order}/"
    for body in ('{"value": true}', '{"value": "3"}', '{"value": null}'):
        response = post(client, url, body)
        assert response.status_code == 400
        assert "value" in response.json()["errors"], body
    assert "finite" in post(client, url, '{"value": 1e400}').json()["errors"]["body"]
    answer = post(client, url, json.dumps({"value": question.answer})).json()
    assert answer["correct"] is True


# Websocket messages -----------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "field", "words"),
    [
        (
            {"seq": 1},
            "type",
            "a message needs a type; types: pause, resume, step, speed",
        ),
        ({"type": "hello"}, "type", "unknown message type 'hello'; types: pause"),
        ({"type": "seen"}, "seq", "a seen message needs seq: an integer of at least"),
        ({"type": "seen", "seq": True}, "seq", "an integer of at least 0; got True"),
        ({"type": "seen", "seq": -1}, "seq", "an integer of at least 0; got -1"),
        ({"type": "seen", "seq": 1.5}, "seq", "an integer of at least 0"),
        ({"type": "ping", "ref": [1]}, "ref", "a string of at most 100 characters or"),
        ({"type": "ping", "ref": True}, "ref", "or a number; got True"),
        ({"type": "ping", "id": 1}, "id", "its fields: type, ref"),
        ({"type": "pause", "value": 1}, "value", "its fields: type, ref"),
        ({"type": "resume", "ref": "r" * 101}, "ref", "at most 100 characters"),
        ({"type": "reset", "hard": True}, "hard", "a reset message has no field"),
        ({"type": "stop", "ref": {}}, "ref", "or a number"),
        ({"type": "speed"}, "value", "needs value: one of 0.25, 0.5, 1, 2, 4, 8"),
        ({"type": "speed", "value": True}, "value", "one of 0.25, 0.5, 1, 2, 4, 8"),
        ({"type": "speed", "value": "1"}, "value", "one of 0.25, 0.5, 1, 2, 4, 8"),
        ({"type": "set", "value": 1}, "name", "the name of one of cache's parameters"),
        ({"type": "set", "name": 3, "value": 1}, "name", "keys, zipf_s"),
        ({"type": "set", "name": "colour", "value": 1}, "colour", "has no parameter"),
        ({"type": "set", "name": "capacity"}, "value", "an integer from 1 to 1000000"),
        ({"type": "set", "name": "capacity", "value": True}, "capacity", "got True"),
        ({"type": "command"}, "name", "the name of one of cache's commands: flush"),
        ({"type": "command", "name": "explode"}, "explode", "its commands: flush"),
        (
            {"type": "command", "name": "resize", "args": [200]},
            "args",
            "an object of resize's arguments and their values (capacity)",
        ),
        (
            {"type": "command", "name": "resize", "args": {"size": 2}},
            "resize.size",
            "its arguments: capacity",
        ),
        (
            {"type": "command", "name": "resize", "args": {"capacity": False}},
            "resize.capacity",
            "an integer",
        ),
    ],
)
def test_each_message_type_names_its_bad_field(message, field, words):
    error = refusal(MESSAGES, message, kind="cache")
    assert error.field == field
    assert words in error.message


def test_a_message_comes_back_normalised():
    assert validate(MESSAGES, {"type": "speed", "value": 2}, kind="cache") == {
        "type": "speed",
        "value": 2.0,
        "ref": None,
    }
    assert validate(
        MESSAGES,
        {"type": "set", "name": "capacity", "value": "50", "ref": 1},
        kind="cache",
    ) == {"type": "set", "name": "capacity", "value": 50, "ref": 1}
    command = validate(MESSAGES, {"type": "command", "name": "resize"}, kind="cache")
    assert command["args"] == {"capacity": 1000}  # the declared default
    assert validate(MESSAGES, {"type": "seen", "seq": 0}, kind="cache")["seq"] == 0


def test_seen_and_ping_are_not_controls():
    for kind in ("seen", "ping"):
        with pytest.raises(EngineError) as caught:
            control_parse("cache", {"type": kind, "seq": 1})
        assert caught.value.field == "type"
        assert "types: pause, resume, step, speed, set, command, reset, stop" in (
            caught.value.message
        )
    assert control_parse("cache", {"type": "pause", "ref": "p"}) == {
        "type": "pause",
        "ref": "p",
    }


@pytest.mark.parametrize(
    ("message", "ref"),
    [
        ({"type": "pause", "ref": "a"}, "a"),
        ({"type": "pause", "ref": 3}, 3),
        ({"type": "explode", "ref": 2.5}, 2.5),
        ({"type": "pause", "ref": True}, None),
        ({"type": "pause", "ref": [1]}, None),
        ({"type": "pause"}, None),
    ],
)
def test_an_error_carries_the_ref_back_only_when_it_is_a_valid_one(message, ref):
    assert message_ref(message) == ref
