"""`manage.py playsteps`: every guided step works when pressed promptly."""

from __future__ import annotations

import math
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from lessons.models import Lesson
from lessons.playback import lesson_play
from lessons.services import (
    lesson_save,
    lesson_to_dict,
    load_directory,
    validate_lesson,
)

pytestmark = pytest.mark.django_db


def lesson(engine: str, steps: list[dict], **preset) -> dict:
    """Return a small lesson in canonical form with the given steps."""
    return validate_lesson(
        {
            "slug": f"try-{engine}",
            "title": "A lesson written for a test",
            "module": "tests",
            "module_title": "Tests",
            "engine": engine,
            "preset": preset,
            "steps": [
                {"title": f"Step {i}", "predict": "What happens?", **s}
                for i, s in enumerate(steps, start=1)
            ],
            "body": "Some text.",
        }
    )


def play(*args: str) -> str:
    out = StringIO()
    call_command("playsteps", *args, stdout=out)
    return out.getvalue()


def test_every_guided_step_of_every_lesson_is_taken_when_pressed_promptly():
    load_directory()
    published = Lesson.objects.filter(status=Lesson.Status.PUBLISHED)
    out = play()  # raises CommandError, naming each refusal, if any is refused
    for slug in published.values_list("slug", flat=True):
        assert f"{slug}: " in out
    assert out.count("all taken") == published.count()


def test_every_prediction_is_compared_with_a_figure_the_run_measured():
    load_directory()
    for lesson in Lesson.objects.filter(status=Lesson.Status.PUBLISHED):
        played = lesson_play(lesson_to_dict(lesson))
        predicted = [s for s in lesson.steps.all() if s.prediction]
        assert len(played.measurements) == len(predicted), lesson.slug
        for m in played.measurements:
            assert isinstance(m.after, (int, float)) and math.isfinite(m.after), (
                f"{lesson.slug}: {m}"
            )


def test_a_step_with_a_prediction_plays_until_its_figure_is_read():
    steps = [
        {
            "prediction": "number",
            "measure": "hit_ratio_recent",
            "settle": 20,
            "actions": [{"command": "resize", "args": {"capacity": 100}}],
        },
        {
            "prediction": "number",
            "measure": "hit_ratio_recent",
            "settle": 30,
            "actions": [{"set": {"zipf_s": 0.0}, "after": 5}],
        },
        {"actions": []},
    ]
    played = lesson_play(lesson("cache", steps))
    warm, m = played.measurements
    assert (warm.step, warm.before, warm.at) == (1, None, 20.0)  # it started the run
    # Step 2 is pressed once step 1's figure was read, 20 s in.
    assert (m.step, m.metric, m.at) == (2, "hit_ratio_recent", 55.0)
    # A flat workload leaves a cache of 100 keys out of 10,000 about 1% of reads.
    assert m.after < 0.05 < m.before
    assert "step 2 (Step 2): hit_ratio_recent" in str(m)


def test_it_names_the_lesson_step_and_action_refused_and_exits_1():
    deploys = [{"actions": [{"command": "deploy"}]}] * 2
    lesson_save(lesson("deploy", deploys, strategy="all_at_once"))
    with pytest.raises(CommandError) as info:
        play("try-deploy")
    assert info.value.returncode == 1
    assert str(info.value) == (
        "1 action(s) refused:\n"
        "  try-deploy: step 2 (Step 2), deploy at 0 s: deploy: a deploy to "
        "version 2 is in progress; wait for it or roll back"
    )


def test_a_step_is_pressed_once_the_previous_steps_delays_have_passed():
    # All at once takes about 12 s. Step 2 is pressed 5 s in, when step 1's last
    # action is sent: its deploy 10 s later is taken, one 5 s later is refused.
    steps = [
        {"actions": [{"command": "deploy"}, {"set": {"request_rate": 50}, "after": 5}]},
        {"actions": [{"command": "deploy", "after": 10}]},
    ]
    played = lesson_play(lesson("deploy", steps, strategy="all_at_once"))
    assert [(r.step, r.action, r.at) for r in played.refusals] == []
    steps[1] = {"actions": [{"command": "deploy", "after": 5}]}
    played = lesson_play(lesson("deploy", steps, strategy="all_at_once"))
    assert [(r.step, r.action, r.at) for r in played.refusals] == [(2, "deploy", 10)]


def test_a_setting_only_a_new_run_takes_starts_a_new_run_as_the_page_does():
    kill = {"command": "kill_server", "args": {"server": 0}}
    steps = [{"actions": [kill]}, {"actions": [kill]}]
    [refusal] = lesson_play(lesson("scaling", steps)).refusals
    assert refusal.message == "server 0 is not running; servers running: none"
    # In the new run that the setting starts, server 0 runs again.
    steps.insert(1, {"actions": [{"set": {"strategy": "horizontal"}}]})
    played = lesson_play(lesson("scaling", steps))
    assert played.refusals == []
    assert (played.steps, played.actions) == (3, 3)


def test_a_refused_setting_is_named_with_its_value():
    steps = [
        {"actions": [{"command": "deploy"}]},
        {"actions": [{"set": {"strategy": "atomic"}}]},
    ]
    [refusal] = lesson_play(lesson("deploy", steps)).refusals
    assert str(refusal) == (
        "try-deploy: step 2 (Step 2), set strategy=atomic at 0 s: strategy can "
        "change only between deploys; a deploy is in progress"
    )


def test_an_unknown_slug_exits_2_naming_it():
    with pytest.raises(CommandError, match="no lesson no-such-lesson") as info:
        play("no-such-lesson")
    assert info.value.returncode == 2
