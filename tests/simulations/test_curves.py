"""The hit-ratio curve job: validated, queued, run by a real worker, with progress."""

from __future__ import annotations

import json
import time

import pytest

from simulations.models import CurveJob
from simulations.theory.caching import curve_sizes, hit_ratio_curve

pytestmark = pytest.mark.django_db(transaction=True)


def post(client, body):
    return client.post(
        "/api/curves/", data=json.dumps(body), content_type="application/json"
    )


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"keys": 5}, "keys", "an integer from 10 to 1000000"),
        ({"requests": 10**9}, "requests", "from 10000 to 2000000"),
        ({"zipf_s": "steep"}, "zipf_s", "a number from 0 to 2.5"),
        ({"size": 3}, "size", "fields: keys, zipf_s, requests, seed"),
    ],
)
def test_bad_input_is_refused_naming_the_field(client, body, field, words):
    response = post(client, body)
    assert response.status_code == 400
    assert words in response.json()["errors"][field]
    assert not CurveJob.objects.exists()


def test_one_curve_at_a_time_per_visitor(client):
    # Another visitor's job in progress does not hold this one back.
    CurveJob.objects.create(params={}, visitor="someone")
    first = post(client, {"keys": 100, "requests": 10_000})
    assert first.status_code == 201
    # A worker may finish that small job at once; hold one of this visitor's
    # jobs in progress for certain, whatever the worker does.
    visitor = client.session["visitor"]
    CurveJob.objects.create(params={}, visitor=visitor, status=CurveJob.Status.RUNNING)
    response = post(client, {"keys": 100, "requests": 10_000})
    assert response.status_code == 429
    assert "still being computed" in response.json()["errors"]["curve"]


def test_a_worker_computes_the_curve_and_reports_progress(client, live_runs):
    params = {"keys": 2000, "zipf_s": 0.8, "requests": 200_000, "seed": 5}
    job_id = post(client, params).json()["id"]
    seen = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        status = client.get(f"/api/curves/{job_id}/").json()
        seen.append(status["progress"])
        if status["status"] in ("done", "failed"):
            break
        time.sleep(0.05)
    assert status["status"] == "done", status
    assert seen == sorted(seen) and seen[-1] == 1.0
    sizes = curve_sizes(2000)
    assert status["result"]["sizes"] == sizes
    assert status["result"]["hit_ratios"] == hit_ratio_curve(
        2000, 0.8, 200_000, 5, sizes
    )
    # Che's approximation beside it, close where the cache is not tiny
    for ratio, che in zip(
        status["result"]["hit_ratios"][5:], status["result"]["che"][5:]
    ):
        assert abs(ratio - che) < 0.03
