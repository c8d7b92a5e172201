"""Class sessions: start by an instructor, join by code, polls on the class socket."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.test import Client
from django.utils import timezone

from lessons.classes import CODE_ALPHABET, CODE_LENGTH
from lessons.models import ClassMember, ClassSession
from lessons.services import lesson_save, validate_lesson
from scalelab.asgi import application
from tests.simulations.test_consumer import next_of

CHOICE = {
    "title": "Shrink the cache",
    "predict": "The cache shrinks tenfold. What happens to the hit ratio?",
    "prediction": "choice",
    "choices": ["It falls tenfold", "It falls much less", "No change"],
    "measure": "hit_ratio",
    "actions": [{"command": "resize", "args": {"capacity": 100}}],
}
NUMBER = {
    "title": "Crash it",
    "predict": "How many reads a second reach the database?",
    "prediction": "number",
    "measure": "db_reads_per_s",
    "actions": [{"command": "crash", "args": {}}],
}
PLAIN = {"title": "Look", "predict": "Watch it.", "actions": []}


QUESTIONS = [
    {
        "kind": "choice",
        "prompt": "What does a bigger cache do to the hit ratio?",
        "choices": [
            {"text": "Raises it", "correct": True, "why": "More keys fit."},
            {"text": "Lowers it", "correct": False, "why": "No."},
        ],
    },
    {
        "kind": "number",
        "prompt": "How many keys fit in 1 MB of 1 KB values?",
        "answer": 1000,
        "tolerance": 50,
        "unit": "keys",
    },
]


def make_lesson():
    return lesson_save(
        validate_lesson(
            {
                "slug": "classy",
                "title": "Classy",
                "module": "tests",
                "module_title": "Tests",
                "engine": "cache",
                "status": "published",
                "steps": [CHOICE, NUMBER, PLAIN],
                "questions": QUESTIONS,
                "body": "Some text.",
            }
        )
    )


def instructor_client():
    user = get_user_model().objects.create_user("ines", password="pw-for-tests-only")
    user.groups.add(Group.objects.get_or_create(name="Instructors")[0])
    client = Client()
    client.force_login(user)
    return client


def start(client, **body):
    return client.post(
        "/api/classes/",
        data=json.dumps({"lesson": "classy", **body}),
        content_type="application/json",
    )


def join(client, code, **body):
    return client.post(
        f"/api/classes/{code}/join",
        data=json.dumps(body),
        content_type="application/json",
    )


@pytest.mark.django_db
def test_an_instructor_starts_a_class_and_gets_a_code_anyone_else_is_refused():
    make_lesson()
    teacher = instructor_client()
    response = start(teacher)
    assert response.status_code == 201
    body = response.json()
    assert len(body["code"]) == CODE_LENGTH and set(body["code"]) <= set(CODE_ALPHABET)
    assert body["join_url"].endswith(f"/join/{body['code']}/")
    assert (
        body["ws_url"] == f"/ws/classes/{body['code']}/" and body["mode"] == "teacher"
    )
    assert start(teacher, mode="student").json()["mode"] == "student"

    student = get_user_model().objects.create_user("sam", password="pw-for-tests-only")
    other = Client()
    other.force_login(student)
    assert start(other).status_code == 403
    assert start(Client()).status_code == 403
    refused = start(teacher, lesson="no-such-lesson")
    assert refused.status_code == 400 and "lesson" in refused.json()["errors"]
    refused = start(teacher, mode="chaos")
    assert (
        refused.status_code == 400
        and "teacher, student" in refused.json()["errors"]["mode"]
    )


@pytest.mark.django_db
def test_a_student_joins_by_code_once_and_an_ended_or_unknown_code_is_refused():
    make_lesson()
    code = start(instructor_client()).json()["code"]
    phone = Client()
    first = join(phone, code.lower(), name="Ada")
    assert first.status_code == 201 and first.json()["lesson"] == "classy"
    again = join(phone, code)
    assert again.status_code == 200 and again.json()["member"] == first.json()["member"]
    assert ClassMember.objects.get().name == "Ada"
    assert join(Client(), "ZZZZZZ").status_code == 404
    assert "no class" in join(Client(), "ZZZZZZ").json()["errors"]["code"]
    ClassSession.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    assert "expired" in join(Client(), code).json()["errors"]["code"]
    ClassSession.objects.update(ended_at=timezone.now())
    response = join(Client(), code)
    assert response.status_code == 404 and "ended" in response.json()["errors"]["code"]


@pytest.mark.django_db
def test_every_page_leads_a_student_to_the_join_page():
    make_lesson()
    for path in ("/", "/glossary/", "/lessons/classy/"):
        page = Client().get(path).content.decode()
        assert '<a href="/join/">Join a class</a>' in page, path
    assert 'href="/join/" aria-current="page">Join a class' in (
        Client().get("/join/").content.decode()
    )


@pytest.mark.django_db
def test_the_join_page_works_without_script_and_says_what_is_wrong():
    make_lesson()
    code = start(instructor_client()).json()["code"]
    phone = Client()
    page = phone.get(f"/join/{code}/")
    assert page.status_code == 200 and code in page.content.decode()
    bad = phone.post("/join/", {"code": "QQQQQQ", "name": ""})
    assert (
        bad.status_code == 404
        and "Class code: no class has this code" in bad.content.decode()
    )
    ok = phone.post("/join/", {"code": f"{code[:3]}-{code[3:]}".lower(), "name": "Bo"})
    assert ok.status_code == 302 and ok["Location"] == f"/lessons/classy/?class={code}"


# The class socket -------------------------------------------------------------------


async def socket(client):
    key = client.cookies["sessionid"].value
    headers = [
        (b"origin", b"http://localhost"),
        (b"host", b"localhost"),
        (b"cookie", f"sessionid={key}".encode()),
    ]
    return headers


async def open_socket(code, client):
    comm = WebsocketCommunicator(
        application, f"/ws/classes/{code}/", headers=await socket(client)
    )
    connected, _ = await comm.connect()
    assert connected
    return comm


@pytest.mark.django_db(transaction=True)
@pytest.mark.timeout(60)
async def test_the_teacher_opens_a_poll_students_answer_and_see_it_only_once_revealed():
    await database_sync_to_async(make_lesson)()
    teacher = await database_sync_to_async(instructor_client)()
    code = (await database_sync_to_async(start)(teacher)).json()["code"]
    students = [Client() for _ in range(3)]
    for i, s in enumerate(students):
        await database_sync_to_async(join)(s, code, name=f"s{i}")

    desk = await open_socket(code, teacher)
    assert (await desk.receive_json_from(timeout=5)) == {
        "type": "hello",
        "role": "teacher",
    }
    state = await next_of(desk, "class.state")
    assert (
        state["members"] == 3
        and state["poll"] is None
        and "s0" not in json.dumps(state)
    )
    phones = [await open_socket(code, s) for s in students]
    for p in phones:
        assert (await p.receive_json_from(timeout=5))["role"] == "student"

    # A student may not drive the class, nor answer a poll that is not open.
    await phones[0].send_json_to({"type": "step", "step": 1})
    error = await next_of(phones[0], "error")
    assert error["field"] == "type" and "only the teacher" in error["message"]
    await phones[0].send_json_to({"type": "poll.answer", "step": 0, "value": 1})
    assert "no poll is open" in (await next_of(phones[0], "error"))["message"]

    await desk.send_json_to({"type": "step", "step": 0})
    await next_of(phones[1], "class.state", step=0)
    await desk.send_json_to({"type": "poll.open", "step": 0})
    await next_of(phones[1], "poll.count", state="open")
    await phones[0].send_json_to({"type": "poll.answer", "step": 0, "value": 7})
    error = await next_of(phones[0], "error")
    assert error["field"] == "value" and "0 to 2" in error["message"]
    for p, choice in zip(phones, [1, 1, 0]):
        await p.send_json_to({"type": "poll.answer", "step": 0, "value": choice})
        await next_of(p, "accepted")
    results = await next_of(desk, "poll.results", answers=3)
    assert results["counts"] == [1, 2, 0] and results["state"] == "open"
    # Students see the count move but not the answers until the reveal.
    assert "counts" not in (await next_of(phones[2], "poll.count"))
    await desk.send_json_to({"type": "poll.close", "step": 0})
    await next_of(desk, "poll.results", state="closed")
    await desk.send_json_to({"type": "poll.reveal", "step": 0})
    shown = await next_of(phones[2], "poll.results", state="revealed")
    assert shown["counts"] == [1, 2, 0] and shown["choices"][1] == "It falls much less"

    # Pause all reaches every phone.
    await desk.send_json_to({"type": "pause_all"})
    for p in phones:
        await next_of(p, "class.state", paused=True)

    # A number poll: a histogram; and a step without a prediction has no poll.
    await desk.send_json_to({"type": "poll.open", "step": 2})
    assert "no prediction" in (await next_of(desk, "error"))["message"]
    await desk.send_json_to({"type": "poll.open", "step": 1})
    await next_of(phones[2], "class.state", poll={"step": 1, "state": "open"})
    for p, v in zip(phones, [100.0, 250.0, 400.0]):
        await p.send_json_to({"type": "poll.answer", "step": 1, "value": v})
        await next_of(p, "accepted")
    numbers = await next_of(desk, "poll.results", answers=3, step=1)
    assert (
        sum(numbers["histogram"]["counts"]) == 3
        and numbers["histogram"]["edges"][0] == 100.0
    )

    # The teacher's CSV: one row per student, their answers by step.
    rows = list(
        csv.reader(
            io.StringIO(
                (
                    await database_sync_to_async(teacher.get)(
                        f"/api/classes/{code}/results.csv"
                    )
                ).content.decode()
            )
        )
    )
    blank = rows.index([])
    assert rows[0][0] == "student" and blank == 4
    assert rows[1][:3] == ["s0", "It falls much less", "100"]
    # Then each poll's distribution, anonymous.
    assert rows[blank + 1] == ["distribution", "answer", "students"]
    assert ["step 1: Shrink the cache", "It falls much less", "2"] in rows[blank:]
    assert sum(int(r[2]) for r in rows[blank + 1 :] if r[0] == "step 2: Crash it") == 3
    assert (
        await database_sync_to_async(students[0].get)(
            f"/api/classes/{code}/results.csv"
        )
    ).status_code == 403

    # Ending the class tells everyone; its code is refused from then on.
    await desk.send_json_to({"type": "end"})
    await next_of(phones[0], "class.state", ended=True)
    late = WebsocketCommunicator(
        application, f"/ws/classes/{code}/", headers=await socket(students[0])
    )
    await late.connect()
    assert "ended" in (await late.receive_json_from(timeout=5))["message"]
    for comm in [desk, *phones, late]:
        await comm.disconnect()


@pytest.mark.django_db(transaction=True)
@pytest.mark.timeout(30)
async def test_a_visitor_who_has_not_joined_is_turned_away():
    await database_sync_to_async(make_lesson)()
    teacher = await database_sync_to_async(instructor_client)()
    code = (await database_sync_to_async(start)(teacher)).json()["code"]
    stranger = Client()
    await database_sync_to_async(stranger.get)(
        "/sandbox/cache/"
    )  # a visitor, not a member
    comm = WebsocketCommunicator(
        application, f"/ws/classes/{code}/", headers=await socket(stranger)
    )
    await comm.connect()
    message = await comm.receive_json_from(timeout=5)
    assert message["type"] == "error" and "join the class first" in message["message"]
    output = await comm.receive_output(timeout=5)
    assert output == {"type": "websocket.close", "code": 4403}


@pytest.mark.django_db
def test_the_join_qr_code_is_made_here_and_holds_the_join_url():
    make_lesson()
    body = start(instructor_client()).json()
    response = Client().get(f"/api/classes/{body['code']}/qr.svg")
    assert response.status_code == 200 and response["Content-Type"] == "image/svg+xml"
    svg = response.content.decode()
    assert (
        svg.startswith("<svg") and body["join_url"] in svg
    )  # in its title, for readers
    assert Client().get("/api/classes/QQQQQQ/qr.svg").status_code == 404


@pytest.mark.django_db
def test_the_lesson_page_in_a_class_shows_the_teacher_console_or_the_student_bar():
    make_lesson()
    teacher = instructor_client()
    assert b"Start a class on this lesson" in teacher.get("/lessons/classy/").content
    code = start(teacher).json()["code"]
    console = teacher.get(f"/lessons/classy/?class={code}").content.decode()
    assert 'data-role="teacher"' in console and f"/api/classes/{code}/qr.svg" in console
    phone = Client()
    assert (
        "join the class first"
        in phone.get(f"/lessons/classy/?class={code}").content.decode()
    )
    phone.post("/join/", {"code": code, "name": "Kim"})
    bar = phone.get(f"/lessons/classy/?class={code}").content.decode()
    assert 'data-role="student"' in bar and "Start a class" not in bar


@pytest.mark.django_db
def test_guessing_codes_is_slowed_down_but_a_whole_class_joins():
    make_lesson()
    code = start(instructor_client()).json()["code"]
    for _ in range(40):  # a class of forty behind one school address
        assert join(Client(), code).status_code == 201
    guesser = Client()
    answers = [join(guesser, "QQQQQQ").status_code for _ in range(21)]
    assert answers[:20] == [404] * 20 and answers[20] == 429
    refused = join(guesser, "QQQQQQ")
    assert (
        "wrong class codes" in refused.json()["errors"]["code"]
        and refused["Retry-After"]
    )


async def _class_of(mode="teacher", names=("s0", "s1")):
    """A class on the test lesson: the teacher's socket and each student's."""
    await database_sync_to_async(make_lesson)()
    teacher = await database_sync_to_async(instructor_client)()
    code = (await database_sync_to_async(start)(teacher, mode=mode)).json()["code"]
    students = [Client() for _ in names]
    for s, name in zip(students, names):
        await database_sync_to_async(join)(s, code, name=name)
    desk = await open_socket(code, teacher)
    phones = [await open_socket(code, s) for s in students]
    return code, desk, phones, students


async def _close(*comms):
    for comm in comms:
        await comm.disconnect()


@pytest.mark.django_db(transaction=True)
@pytest.mark.timeout(60)
async def test_the_measured_figure_is_drawn_over_the_revealed_answers():
    code, desk, phones, _ = await _class_of()
    await desk.send_json_to({"type": "poll.open", "step": 1})
    await next_of(phones[1], "class.state", poll={"step": 1, "state": "open"})
    for p, v in zip(phones, [100.0, 300.0]):
        await p.send_json_to({"type": "poll.answer", "step": 1, "value": v})
        await next_of(p, "accepted")
    # Only the teacher's page reports what the shared run measured.
    await phones[0].send_json_to({"type": "measured", "step": 1, "value": 5})
    assert "only the teacher" in (await next_of(phones[0], "error"))["message"]
    await desk.send_json_to({"type": "measured", "step": 2, "value": 5})
    assert "no prediction" in (await next_of(desk, "error"))["message"]
    await desk.send_json_to({"type": "poll.reveal", "step": 1})
    shown = await next_of(phones[1], "poll.results", state="revealed")
    assert shown["measured"] is None  # the step has not run yet
    await desk.send_json_to({"type": "measured", "step": 1, "value": 212.5})
    shown = await next_of(phones[1], "poll.results", measured=212.5)
    assert shown["answers"] == 2 and shown["kind"] == "number"
    await _close(desk, *phones)


@pytest.mark.django_db(transaction=True)
@pytest.mark.timeout(60)
async def test_a_checkpoint_question_is_asked_of_the_class_and_its_results_shown():
    code, desk, phones, students = await _class_of(names=("s0", "s1", "s2"))
    await desk.send_json_to({"type": "question.open", "question": 5})
    error = await next_of(desk, "error")
    assert error["field"] == "question" and "0 to 1" in error["message"]
    await phones[0].send_json_to({"type": "question.answer", "question": 0, "value": 0})
    assert "not open" in (await next_of(phones[0], "error"))["message"]

    await desk.send_json_to({"type": "question.open", "question": 0})
    state = await next_of(
        phones[0], "class.state", question={"index": 0, "state": "open"}
    )
    assert state["question"]["index"] == 0
    await phones[0].send_json_to({"type": "question.answer", "question": 0, "value": 2})
    error = await next_of(phones[0], "error")
    assert error["field"] == "value" and "0 to 1" in error["message"]
    for p, choice in zip(phones, [0, 0, 1]):
        await p.send_json_to(
            {"type": "question.answer", "question": 0, "value": choice}
        )
        await next_of(p, "accepted")
    live = await next_of(desk, "question.results", answers=3)
    assert live["counts"] == [2, 1] and "correct" not in live
    # Students see their class's answers only once the question is closed.
    await desk.send_json_to({"type": "question.close", "question": 0})
    closed = await next_of(phones[2], "question.results", state="closed")
    assert closed["counts"] == [2, 1] and closed["correct"] == 0
    assert closed["choices"] == ["Raises it", "Lowers it"]

    # A number question: a histogram, and the answer once closed.
    await desk.send_json_to({"type": "question.open", "question": 1})
    await next_of(phones[2], "class.state", question={"index": 1, "state": "open"})
    for p, v in zip(phones, [900.0, 1000.0, 1024.0]):
        await p.send_json_to({"type": "question.answer", "question": 1, "value": v})
        await next_of(p, "accepted")
    await desk.send_json_to({"type": "question.close", "question": 1})
    numbers = await next_of(phones[1], "question.results", state="closed", question=1)
    assert sum(numbers["histogram"]["counts"]) == 3 and numbers["answer"] == 1000

    # The CSV has each student's answers to the questions too.
    teacher_csv = await database_sync_to_async(
        lambda: ClassSession.objects.get(code=code)
    )()
    from lessons.classes import results_csv

    rows = list(
        csv.reader(io.StringIO(await database_sync_to_async(results_csv)(teacher_csv)))
    )
    assert rows[0][-2].startswith("question 1:") and rows[1][-2:] == [
        "Raises it",
        "900",
    ]
    await _close(desk, *phones)


@pytest.mark.django_db(transaction=True)
@pytest.mark.timeout(60)
async def test_student_paced_the_dashboard_shows_each_place_and_bring_back_rejoins():
    code, desk, phones, students = await _class_of(mode="student", names=("Ana", "Bo"))
    members = await next_of(desk, "class.members")
    assert [m["name"] for m in members["members"]] == ["Ana", "Bo"]
    assert all(m["step"] == 0 and not m["idle"] for m in members["members"])

    # At their own pace students move on and predict with no poll opened.
    await phones[0].send_json_to({"type": "progress", "step": 1})
    await next_of(phones[0], "accepted")
    await phones[0].send_json_to({"type": "poll.answer", "step": 1, "value": 42})
    await next_of(phones[0], "accepted")
    await phones[1].send_json_to({"type": "progress", "step": 9})
    error = await next_of(phones[1], "error")
    assert error["field"] == "step" and "0 to 2" in error["message"]
    board = await next_of(
        desk, "class.members", members=lambda ms: ms[0]["predictions"] == {"1": "42"}
    )
    assert board["members"][0]["step"] == 1 and board["members"][1]["step"] == 0
    # The teacher may not pose as a student.
    await desk.send_json_to({"type": "progress", "step": 1})
    assert "only students" in (await next_of(desk, "error"))["message"]

    # Nobody has moved for a few minutes: the dashboard marks who.
    await database_sync_to_async(
        lambda: ClassMember.objects.filter(name="Bo").update(
            moved_at=timezone.now() - timedelta(minutes=4)
        )
    )()
    await phones[0].send_json_to({"type": "progress", "step": 2})
    board = await next_of(desk, "class.members", members=lambda ms: ms[0]["step"] == 2)
    assert [m["idle"] for m in board["members"]] == [False, True]
    assert board["members"][1]["moved_s"] >= 240

    # Coming back keeps one's place.
    await phones[0].disconnect()
    again = await open_socket(code, students[0])
    hello = await again.receive_json_from(timeout=5)
    assert hello["place"]["step"] == 2 and hello["place"]["predictions"] == {"1": 42.0}

    # "Bring everyone back": teacher-paced again, and answers wait for a poll.
    await desk.send_json_to({"type": "mode", "mode": "teacher"})
    await next_of(phones[1], "class.state", mode="teacher")
    await phones[1].send_json_to({"type": "poll.answer", "step": 1, "value": 3})
    assert "no poll is open" in (await next_of(phones[1], "error"))["message"]
    await _close(desk, again, phones[1])


@pytest.mark.django_db
def test_a_class_behind_one_address_gets_the_class_allowance(settings):
    settings.SCALELAB = {
        **settings.SCALELAB,
        "ADDRESS_LIVE_RUNS": 2,
        "ADDRESS_RUNS_PER_MIN": 2,
        "CLASS_RUNS_PER_MEMBER": 2,
    }
    make_lesson()
    code = start(instructor_client()).json()["code"]

    def run(client):
        return client.post(
            "/api/runs/",
            data=json.dumps({"kind": "cache"}),
            content_type="application/json",
        )

    # Three visitors from one address who are not in a class: the third is refused.
    outsiders = [run(Client()).status_code for _ in range(3)]
    assert outsiders == [201, 201, 429]
    # Four members of a class at the same address all start one.
    members = [Client() for _ in range(4)]
    for m in members:
        assert join(m, code).status_code == 201
    assert [run(m).status_code for m in members] == [201] * 4
    # The class's allowance is for its members: 4 members x 2 runs.
    from simulations.models import Run

    assert Run.objects.filter(client=f"class:{code}").count() == 4
    for m in members:
        run(m)
    refused = run(members[0])
    assert refused.status_code == 429
    assert f"in class {code}" in refused.json()["errors"]["runs"]


@pytest.mark.django_db(transaction=True)
@pytest.mark.timeout(60)
async def test_answers_sent_at_once_are_saved_together_each_told_its_outcome():
    code, desk, phones, _ = await _class_of(names=("a", "b", "c"))
    await desk.send_json_to({"type": "poll.open", "step": 0})
    await next_of(phones[2], "class.state", poll={"step": 0, "state": "open"})
    # All at once, as a class does: one student changes their mind in the same
    # moment, one sends a choice that does not exist.
    for p, value in [(phones[0], 0), (phones[1], 2), (phones[0], 1), (phones[2], 9)]:
        await p.send_json_to({"type": "poll.answer", "step": 0, "value": value})
    await next_of(phones[0], "accepted")
    await next_of(phones[0], "accepted")
    await next_of(phones[1], "accepted")
    error = await next_of(phones[2], "error")
    assert error["field"] == "value" and "0 to 2" in error["message"]
    results = await next_of(desk, "poll.results", answers=2)
    assert results["counts"] == [0, 1, 1]  # the later of the two answers counts
    await _close(desk, *phones)
