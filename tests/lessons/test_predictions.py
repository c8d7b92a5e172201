"""Predictions: authored per step, answered before playing, kept with progress."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth import get_user_model

from lessons.models import Progress
from lessons.services import (
    LessonFileError,
    lesson_save,
    lesson_to_text,
    parse_lesson,
    validate_lesson,
)

pytestmark = pytest.mark.django_db

PASSWORD = "a-long-pass-phrase-42"

RESIZE = {
    "title": "Shrink the cache",
    "predict": "The cache shrinks tenfold. What happens to the hit ratio?",
    "prediction": "choice",
    "choices": ["It falls tenfold", "It falls much less than tenfold", "No change"],
    "measure": "hit_ratio",
    "settle": 20,
    "actions": [{"command": "resize", "args": {"capacity": 100}}],
    "explain": "Skewed popularity keeps the hottest keys in even a small cache.",
}
READS = {
    "title": "Crash it",
    "predict": "How many reads a second reach the database once the cache is down?",
    "prediction": "number",
    "measure": "db_reads_per_s",
    "settle": 5,
    "actions": [{"command": "crash", "args": {}, "after": 10}],
}


def lesson(*steps, status="published", **extra):
    return validate_lesson(
        {
            "slug": "predicting",
            "title": "Predicting",
            "module": "tests",
            "module_title": "Tests",
            "engine": "cache",
            "status": status,
            "steps": list(steps),
            "body": "Some text.",
            **extra,
        }
    )


def refusal(**step) -> str:
    with pytest.raises(LessonFileError) as exc:
        lesson({"title": "A step", "predict": "What happens?", **step})
    return str(exc.value)


def post(client, index, what, body):
    return client.post(
        f"/lessons/predicting/steps/{index}/{what}/",
        data=json.dumps(body),
        content_type="application/json",
    )


def test_a_prediction_goes_round_the_lesson_file_format():
    data = lesson(RESIZE, READS)
    assert data["steps"][0]["choices"] == RESIZE["choices"]
    assert data["steps"][1]["settle"] == 5.0
    text = lesson_to_text(data)
    assert 'prediction = "choice"' in text
    assert parse_lesson(text, "x")["steps"] == data["steps"]


def test_a_prediction_is_checked_against_its_engine_and_kind():
    assert "steps[0].measure: must be one of the cache engine's figures: hit_ratio" in (
        refusal(prediction="number", measure="hitratio")
    )
    assert "steps[0].prediction: must be one of number, choice" in refusal(
        prediction="guess", measure="hit_ratio"
    )
    assert "steps[0].choices: a choice prediction needs 2 to 6 choices" in refusal(
        prediction="choice", measure="hit_ratio", choices=["Only one"]
    )
    assert "steps[0].choices: must all differ" in refusal(
        prediction="choice", measure="hit_ratio", choices=["Same", "Same"]
    )
    assert "steps[0].choices: only a choice prediction has choices" in refusal(
        prediction="number", measure="hit_ratio", choices=["A", "B"]
    )
    assert "steps[0].measure: is required with a prediction" in refusal(
        prediction="number"
    )
    assert "steps[0].settle: must be a number of simulated seconds from 0 to 600" in (
        refusal(prediction="number", measure="hit_ratio", settle=601)
    )
    assert "steps[0].measure: goes with a prediction" in refusal(measure="hit_ratio")
    with pytest.raises(LessonFileError, match=r"steps\[0\]\.predict: is required"):
        lesson({"title": "A step", "prediction": "number", "measure": "hit_ratio"})


def test_the_page_asks_the_prediction_and_keeps_the_reveal_closed(client):
    lesson_save(lesson(RESIZE, READS))
    page = client.get("/lessons/predicting/").content.decode()
    assert page.count('<form class="prediction"') == 2
    assert "It falls much less than tenfold" in page
    assert "Your prediction (reads/s)" in page
    assert "Compared with your run's “Database reads”." in page
    # "What happened, and why" waits for the step to have run.
    assert '<section class="reveal" hidden' in page
    assert "<details><summary>What happened" not in page
    ask = json.loads(
        page.split('data-prediction="')[1].split('"')[0].replace("&quot;", '"')
    )
    assert ask["measure"] == "hit_ratio" and ask["reveal_after"] == 20.0
    second = page.split('data-prediction="')[2].split('"')[0].replace("&quot;", '"')
    assert json.loads(second)["reveal_after"] == 15.0  # its crash waits 10 s


def test_a_visitors_prediction_and_measurement_are_kept_for_their_next_visit(client):
    lesson_save(lesson(RESIZE, READS))
    client.get("/lessons/predicting/")
    assert post(client, 0, "measured", {"after": 0.4}).status_code == 409
    assert post(client, 0, "prediction", {"choice": 1}).status_code == 200
    assert post(client, 0, "prediction", {"choice": 2}).status_code == 200
    response = post(client, 0, "measured", {"after": 0.31, "before": 0.62, "t": 40})
    assert response.json()["prediction"]["measured"] == {
        "after": 0.31,
        "before": 0.62,
        "t": 40.0,
    }
    # Once the step has run, the prediction no longer changes.
    late = post(client, 0, "prediction", {"choice": 0})
    assert late.status_code == 409
    assert "can no longer change" in late.json()["errors"]["prediction"]
    page = client.get("/lessons/predicting/").content.decode()
    kept = json.loads(
        page.split('data-predicted="')[1].split('"')[0].replace("&quot;", '"')
    )
    assert kept["choice"] == 2 and kept["measured"]["after"] == 0.31


def test_bad_predictions_name_the_field_and_what_it_takes(client):
    lesson_save(lesson(RESIZE, READS, status="published"))
    wrong = post(client, 0, "prediction", {"choice": 3}).json()["errors"]
    assert "choice" in wrong and "0, 1, 2" in wrong["choice"]
    assert "value" in post(client, 1, "prediction", {"value": "lots"}).json()["errors"]
    assert post(client, 1, "prediction", {"value": 1e400}).status_code == 400
    assert post(client, 5, "prediction", {"value": 1}).status_code == 404
    text = client.post(
        "/lessons/predicting/steps/1/prediction/", data="1", content_type="text/plain"
    )
    assert text.status_code == 415


def test_a_draft_lessons_steps_take_no_predictions(client):
    lesson_save(lesson(RESIZE, status="draft"))
    assert post(client, 0, "prediction", {"choice": 1}).status_code == 404


def test_predictions_made_before_signing_in_are_merged_into_the_account(client):
    lesson_save(lesson(RESIZE, READS))
    user = get_user_model().objects.create_user("student", password=PASSWORD)
    client.force_login(user)
    post(client, 1, "prediction", {"value": 500})
    client.logout()
    client.get("/lessons/predicting/")
    post(client, 0, "prediction", {"choice": 1})
    post(client, 1, "prediction", {"value": 20})
    client.post("/accounts/login/", {"username": "student", "password": PASSWORD})
    row = Progress.objects.get(user=user, lesson__slug="predicting")
    assert row.predictions["0"]["choice"] == 1
    # The account's own prediction stands: it was on record before.
    assert row.predictions["1"]["value"] == 500
    page = client.get("/lessons/predicting/").content.decode()
    assert page.count("data-predicted=") == 2
