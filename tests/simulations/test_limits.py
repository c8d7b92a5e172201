"""Limits per client address and for the whole site, over HTTP and the websocket.

Every request of the Django test client comes from 127.0.0.1 unless it says
otherwise; a fresh ``Client()`` is a fresh session, which is what a flood uses.
"""

from __future__ import annotations

import json

import pytest
from django.contrib.auth.models import User
from django.test import Client

from simulations.models import CurveJob, Run

pytestmark = pytest.mark.django_db


def limit(settings, **values):
    settings.SCALELAB = {**settings.SCALELAB, **values}


def start(client, address="127.0.0.1", forwarded=None):
    extra = {"REMOTE_ADDR": address}
    if forwarded:
        extra["HTTP_X_FORWARDED_FOR"] = forwarded
    return client.post(
        "/api/runs/",
        data=json.dumps({"kind": "cache"}),
        content_type="application/json",
        **extra,
    )


def curve(client, address="127.0.0.1"):
    return client.post(
        "/api/curves/",
        data=json.dumps({"keys": 200, "requests": 10_000}),
        content_type="application/json",
        REMOTE_ADDR=address,
    )


def test_fresh_sessions_from_one_address_are_held_to_its_rate(settings):
    limit(settings, ADDRESS_RUNS_PER_MIN=3)
    assert [start(Client()).status_code for _ in range(3)] == [201] * 3
    refused = start(Client())
    assert refused.status_code == 429
    assert (
        "at most 3 new runs a minute from one address"
        in (refused.json()["errors"]["runs"])
    )
    assert 1 <= int(refused["Retry-After"]) <= 60
    assert Run.objects.count() == 3
    # Another address is not held back by this one.
    assert start(Client(), address="192.0.2.7").status_code == 201


def test_live_runs_are_counted_per_address(settings):
    limit(settings, ADDRESS_LIVE_RUNS=2)
    assert [start(Client()).status_code for _ in range(2)] == [201, 201]
    refused = start(Client())
    assert refused.status_code == 429
    assert "at most 2 live runs from one address" in refused.json()["errors"]["runs"]
    assert refused["Retry-After"]
    # Once one ends there is room again.
    Run.objects.filter(id=Run.objects.first().id).update(status="stopped")
    assert start(Client()).status_code == 201


def test_the_visitor_is_told_about_their_own_quota_first(settings):
    limit(settings, ADDRESS_LIVE_RUNS=3, RUNS_PER_VISITOR=3)
    client = Client()
    for _ in range(3):
        start(client)
    refused = start(client)
    assert refused.status_code == 429
    assert "stop one of yours" in refused.json()["errors"]["runs"]


def test_the_site_cap_is_a_503_with_a_time_to_come_back(settings):
    limit(settings, MAX_LIVE_RUNS=2)
    start(Client())
    start(Client(), address="192.0.2.7")
    refused = start(Client(), address="198.51.100.4")
    assert refused.status_code == 503
    assert refused["Retry-After"] == "30"
    assert refused.json()["errors"]["runs"] == (
        "ScaleLab is at its limit of 2 live runs: try again in 30 s"
    )


def test_a_forged_forwarded_for_does_not_evade_the_limit(settings):
    settings.TRUSTED_PROXIES = []
    limit(settings, ADDRESS_RUNS_PER_MIN=2)
    codes = [start(Client(), forwarded=f"203.0.113.{i}").status_code for i in range(3)]
    assert codes == [201, 201, 429]


def test_behind_a_trusted_proxy_each_client_has_its_own_limit(settings):
    settings.TRUSTED_PROXIES = ["10.0.0.2"]
    limit(settings, ADDRESS_RUNS_PER_MIN=2)
    for client_address in ("203.0.113.1", "203.0.113.2"):
        codes = [
            start(Client(), address="10.0.0.2", forwarded=client_address).status_code
            for _ in range(3)
        ]
        assert codes == [201, 201, 429]
    assert set(Run.objects.values_list("client", flat=True)) == {
        "203.0.113.1",
        "203.0.113.2",
    }


def test_curve_jobs_are_capped_per_address_and_for_the_site(settings):
    limit(settings, ADDRESS_CURVE_JOBS=2, MAX_CURVE_JOBS=3)
    assert [curve(Client()).status_code for _ in range(2)] == [201, 201]
    refused = curve(Client())
    assert refused.status_code == 429
    assert (
        "curve jobs being computed from one address"
        in (refused.json()["errors"]["curve"])
    )
    assert curve(Client(), address="192.0.2.7").status_code == 201
    busy = curve(Client(), address="198.51.100.4")
    assert busy.status_code == 503
    assert busy["Retry-After"] == "10"
    assert CurveJob.objects.count() == 3


def test_sign_ups_from_one_address_are_throttled(settings):
    limit(settings, ADDRESS_SIGNUPS_PER_H=2)

    def sign_up(n):
        return Client().post(
            "/accounts/signup/",
            {
                "username": f"student{n}",
                "password1": "a-long-pass-phrase-9",
                "password2": "a-long-pass-phrase-9",
            },
        )

    assert [sign_up(n).status_code for n in range(2)] == [302, 302]
    refused = sign_up(2)
    assert refused.status_code == 429
    assert "at most 2 new accounts an hour from one address" in refused.content.decode()
    assert refused["Retry-After"]
    assert not User.objects.filter(username="student2").exists()


def test_a_throttled_sign_in_tries_no_password(settings):
    limit(settings, ADDRESS_SIGNINS_PER_MIN=2)
    User.objects.create_user("teacher", password="right-pass-phrase-7")
    client = Client()
    for _ in range(2):
        wrong = client.post(
            "/accounts/login/", {"username": "teacher", "password": "guess"}
        )
        assert wrong.status_code == 200
    # Even the right password is not tried once the address is over its rate.
    right = client.post(
        "/accounts/login/", {"username": "teacher", "password": "right-pass-phrase-7"}
    )
    assert right.status_code == 429
    assert "sign-in attempts a minute" in right.content.decode()
    assert "_auth_user_id" not in client.session


@pytest.mark.django_db(transaction=True)
@pytest.mark.timeout(60)
async def test_a_ping_flood_is_told_then_closed(live_runs, visitor_session):
    from simulations.consumers import FLOOD_CLOSE, FLOOD_DROPS, RATES
    from tests.simulations.test_consumer import connect, create_run, next_of

    key, visitor = visitor_session
    run = await create_run(visitor)
    comm, _ = await connect(run.id, key)
    for n in range(RATES["ping"] + 1):
        await comm.send_json_to({"type": "ping", "ref": n})
    pongs = [await next_of(comm, "pong", ref=n) for n in range(RATES["ping"])]
    assert len(pongs) == RATES["ping"]
    told = await next_of(comm, "error")
    assert told["message"] == f"too many pings: at most {RATES['ping']} a second"
    assert told["ref"] == RATES["ping"]
    # A client that keeps on is cut off, with a code of its own, and the run lives on.
    for n in range(FLOOD_DROPS + 10):
        await comm.send_json_to({"type": "ping", "ref": 100 + n})
    while True:
        message = await comm.receive_output(timeout=5)
        if message["type"] == "websocket.close":
            break
    assert message["code"] == FLOOD_CLOSE
    again, _ = await connect(run.id, key)
    await next_of(again, "frame")
    await again.disconnect()


@pytest.mark.django_db(transaction=True)
@pytest.mark.timeout(60)
async def test_controls_and_acknowledgements_have_rates_of_their_own(
    live_runs, visitor_session
):
    from simulations.consumers import RATES
    from tests.simulations.test_consumer import connect, create_run, next_of

    key, visitor = visitor_session
    run = await create_run(visitor)
    comm, _ = await connect(run.id, key)
    for n in range(RATES["control"] + 1):
        await comm.send_json_to({"type": "speed", "value": 2, "ref": n})
    told = await next_of(comm, "error", ref=RATES["control"])
    assert told["message"] == f"too many controls: at most {RATES['control']} a second"
    for _ in range(RATES["seen"] + 1):
        await comm.send_json_to({"type": "seen", "seq": 1})
    told = await next_of(comm, "error")
    assert told["message"] == (
        f"too many acknowledgements: at most {RATES['seen']} a second"
    )
    # Pings have their own allowance, untouched by the controls and acks.
    await comm.send_json_to({"type": "ping", "ref": "still-here"})
    await next_of(comm, "pong", ref="still-here")
    await comm.disconnect()


# Only runs someone watches count -------------------------------------------------


@pytest.fixture
def memory_transport(monkeypatch):
    from simulations.runs import admission, lifecycle
    from simulations.transport import MemoryTransport

    transport = MemoryTransport(replay=10)
    monkeypatch.setattr(admission, "get_transport", lambda: transport)
    monkeypatch.setattr(lifecycle, "get_transport", lambda: transport)
    monkeypatch.setattr(lifecycle.drive_run_task, "delay", lambda run_id: None)
    return transport


def started(client, n, minutes_ago=1):
    from datetime import timedelta

    from django.utils import timezone

    ids = [start(client).json()["id"] for _ in range(n)]
    Run.objects.filter(id__in=ids).update(
        created_at=timezone.now() - timedelta(minutes=minutes_ago)
    )
    return ids


def stops(transport, run_ids):
    return {r for r in run_ids if {"type": "stop"} in transport.controls.get(r, [])}


def test_at_the_quota_the_visitors_unwatched_runs_make_room(
    settings, memory_transport, django_capture_on_commit_callbacks
):
    """Run, next lesson, Run, next lesson, Run: the fourth lesson still runs."""
    limit(settings, RUNS_PER_VISITOR=3)
    client = Client()
    with django_capture_on_commit_callbacks(execute=True):
        old = started(client, 3)
        fourth = start(client)
    assert fourth.status_code == 201
    # The pages that started them were left: each is told to stop, and only those.
    assert stops(memory_transport, old) == set(old)
    assert not stops(memory_transport, [fourth.json()["id"]])


def test_watched_runs_and_runs_just_started_still_count(
    settings, memory_transport, django_capture_on_commit_callbacks
):
    from asgiref.sync import async_to_sync

    limit(settings, RUNS_PER_VISITOR=3)
    client = Client()
    with django_capture_on_commit_callbacks(execute=True):
        watched = started(client, 2)
        for run_id in watched:
            async_to_sync(memory_transport.aviewer)(run_id, "tab", True)
        fresh = start(client).json()["id"]  # its page is still connecting
        refused = start(client)
    assert refused.status_code == 429
    assert "stop one of yours" in refused.json()["errors"]["runs"]
    assert not stops(memory_transport, [*watched, fresh])


def test_the_page_attaches_to_the_visitors_live_run_of_it(client):
    other = Client()
    other_run = start(other).json()["id"]
    lesson = "/lessons/caching-and-eviction/"
    from lessons.models import Lesson

    if not Lesson.objects.filter(slug="caching-and-eviction").exists():
        from django.core.management import call_command

        call_command("loadlessons", verbosity=0)
    client.get(lesson)  # the visitor's session
    assert b"data-live-run" not in client.get(lesson).content
    mine = client.post(
        "/api/runs/",
        data=json.dumps({"kind": "cache", "lesson": "caching-and-eviction"}),
        content_type="application/json",
    ).json()["id"]
    page = client.get(lesson).content.decode()
    assert f'data-live-run="{mine}"' in page
    assert other_run not in page
    # The sandbox of the same engine is another page: it does not take the lesson's run.
    assert b"data-live-run" not in client.get("/sandbox/cache/").content
    sandbox_run = start(client).json()["id"]
    assert (
        f'data-live-run="{sandbox_run}"'
        in client.get("/sandbox/cache/").content.decode()
    )
    Run.objects.filter(id=mine).update(status="stopped")
    assert b"data-live-run" not in client.get(lesson).content


def test_a_lost_curve_job_stops_holding_its_visitors_place(client):
    from datetime import timedelta

    from django.utils import timezone

    from simulations.curves import LOST, LOST_AFTER_S

    first = curve(client)
    assert first.status_code == 201
    assert curve(client).status_code == 429  # one at a time
    # Its message went with a Redis that lost its data: no worker will ever take it.
    CurveJob.objects.filter(id=first.json()["id"]).update(
        created_at=timezone.now() - timedelta(seconds=LOST_AFTER_S + 1)
    )
    assert curve(client).status_code == 201
    lost = client.get(f"/api/curves/{first.json()['id']}/").json()
    assert lost["status"] == "failed"
    assert lost["error"] == LOST
