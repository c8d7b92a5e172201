"""The run API: creating runs, field errors, quotas, reading status."""

from __future__ import annotations

import json

import pytest

from simulations.models import Run

pytestmark = pytest.mark.django_db


def post(client, body):
    return client.post(
        "/api/runs/",
        data=json.dumps(body) if not isinstance(body, str) else body,
        content_type="application/json",
    )


def test_it_creates_a_run_with_validated_params(client):
    response = post(client, {"kind": "cache", "params": {"capacity": "250"}, "seed": 9})
    assert response.status_code == 201
    data = response.json()
    assert data["params"]["capacity"] == 250
    assert data["params"]["keys"] == 10_000  # defaults filled in
    assert data["status"] == "running"
    assert data["ws_url"] == f"/ws/runs/{data['id']}/"
    run = Run.objects.get(id=data["id"])
    assert run.visitor == client.session["visitor"]


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"kind": "cach"}, "kind", "unknown engine kind 'cach'; kinds: "),
        (
            {"kind": "cache", "params": {"capacity": 0}},
            "params.capacity",
            "from 1 to 1000000",
        ),
        (
            {"kind": "cache", "params": {"speed": 1}},
            "params.speed",
            "its parameters: keys, zipf_s",
        ),
        ({"kind": "cache", "params": [1]}, "params", "an object"),
        ({"kind": "cache", "seed": -1}, "seed", "from 0 to 2147483647"),
        ({"kind": "cache", "seed": True}, "seed", "integer"),
        ({"kind": "cache", "colour": "red"}, "colour", "fields: kind, params, seed"),
        ([], "body", "JSON object"),
        ("{", "body", "JSON object"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(client, body, field, words):
    response = post(client, body)
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert list(errors) == [field]
    assert words in errors[field]
    assert Run.objects.count() == 0


def test_a_fourth_live_run_is_refused_with_a_clear_error(client, settings):
    for _ in range(3):
        assert post(client, {"kind": "cache"}).status_code == 201
    response = post(client, {"kind": "cache"})
    assert response.status_code == 429
    assert "at most 3 live runs" in response.json()["errors"]["runs"]
    Run.objects.filter(status="running").update(status="stopped")
    assert post(client, {"kind": "cache"}).status_code == 201


def test_quotas_are_per_visitor(client, django_user_model):
    from django.test import Client

    for _ in range(3):
        post(client, {"kind": "cache"})
    assert post(Client(), {"kind": "cache"}).status_code == 201


def test_anyone_with_the_id_reads_the_status_but_only_the_owner_controls(client):
    from django.test import Client

    run_id = post(client, {"kind": "cache"}).json()["id"]
    assert client.get(f"/api/runs/{run_id}/").json()["can_control"] is True
    other = Client().get(f"/api/runs/{run_id}/")
    assert other.status_code == 200
    assert other.json()["can_control"] is False
    assert client.get("/api/runs/not-a-uuid/").status_code == 404


@pytest.mark.parametrize("resource", ["runs", "curves"])
@pytest.mark.parametrize(
    "malformed",
    ["not-a-uuid", "00000000-0000-0000-0000-00000000000", "0" * 32 + "x"],
)
def test_a_malformed_id_is_a_404(client, resource, malformed):
    assert client.get(f"/api/{resource}/{malformed}/").status_code == 404


def test_an_unknown_id_is_a_404(client):
    unknown = "00000000-0000-0000-0000-000000000000"
    assert client.get(f"/api/runs/{unknown}/").status_code == 404
    assert client.get(f"/api/curves/{unknown}/").status_code == 404


def test_posting_needs_the_csrf_token():
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    assert post(strict, {"kind": "cache"}).status_code == 403


def test_the_engines_are_described_for_the_controls(client):
    engines = {e["kind"]: e for e in client.get("/api/engines/").json()["engines"]}
    cache = engines["cache"]
    capacity = next(p for p in cache["params"] if p["name"] == "capacity")
    assert capacity["min"] == 1 and capacity["unit"] == "items"
    assert [c["name"] for c in cache["commands"]][:4] == [
        "flush",
        "crash",
        "restart",
        "resize",
    ]
