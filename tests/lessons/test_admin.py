"""Authoring lessons in the admin, as an instructor would, through the Django test client."""

from __future__ import annotations

import io
import re
import zipfile
from html.parser import HTMLParser

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from lessons.forms import choices_from_text, choices_to_text
from lessons.models import Lesson, LessonVersion, Module, Term
from lessons.services import lesson_save, lesson_to_dict, lesson_to_text, parse_lesson
from lessons.widgets import MAX_ROWS, actions_from_rows

pytestmark = pytest.mark.django_db

ADD = "/admin/lessons/lesson/add/"
CHANGELIST = "/admin/lessons/lesson/"
BODY = "# Queues\r\n\r\nA **queue** smooths bursts.\r\n"
# A lesson with every kind of part, as the repository's files hold them.
RICH = """+++
slug = "caching-rich"
title = "Caching, richly"
module = "caching"
module_title = "Caching"
module_order = 3
order = 1
status = "published"
summary = "Keep hot data in memory."
engine = "cache"
topics = ["caching"]
objectives = ["Explain the hit ratio.", "Predict the effect of size."]
glossary = ["cache"]

[preset]
keys = 10000
zipf_s = 0.9
capacity = 1000

[[steps]]
title = "Shrink the cache"
predict = \"\"\"
Does the ratio fall ten times?
Think first.\"\"\"
text = "Apply the smaller size."
button = "Resize to 100"
explain = "It falls, but far less."
actions = [{ command = "resize", args = { capacity = 100 } }, { set = { zipf_s = 0.0 }, after = 15.0 }]

[[questions]]
kind = "number"
prompt = "How many reads reach the database?"
answer = 200.0
tolerance = 5.0
unit = "reads/s"
explain = "Only misses do."

[[questions]]
kind = "choice"
prompt = "Which entry does LRU evict?"
explain = "Recency predicts use."
[[questions.choices]]
text = "The one read least recently"
correct = true
why = "Right."
[[questions.choices]]
text = "The one read least often | overall"
correct = false
why = \"\"\"
That is LFU.

It counts reads.\"\"\"
+++
# Caching

Text with a table:

| a | b |
|---|---|
| 1 | 2 |
"""


class FormFields(HTMLParser):
    """Collect what a browser would post from one form of a page."""

    def __init__(self, form_id: str) -> None:
        super().__init__()
        self.form_id = form_id
        self.inside = False
        self.fields: list[tuple[str, str]] = []
        self.textarea: str | None = None
        self.text = ""
        self.select: str | None = None
        self.options: list[tuple[str, bool]] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form":
            self.inside = a.get("id") == self.form_id
        if not self.inside or "name" not in a and tag != "option":
            return
        if tag == "input":
            kind = a.get("type", "text")
            if kind in ("submit", "button", "file"):
                return
            if kind == "checkbox" and "checked" not in a:
                return
            self.fields.append(
                (a["name"], a.get("value", "on" if kind == "checkbox" else ""))
            )
        elif tag == "textarea":
            self.textarea, self.text = a["name"], ""
        elif tag == "select":
            self.select, self.options = a["name"], []
        elif tag == "option" and self.select:
            self.options.append((a.get("value", ""), "selected" in a))

    def handle_data(self, data):
        if self.textarea is not None:
            self.text += data

    def handle_endtag(self, tag):
        if tag == "form":
            self.inside = False
        elif tag == "textarea" and self.textarea is not None:
            text = self.text[1:] if self.text.startswith("\n") else self.text
            self.fields.append((self.textarea, text.replace("\n", "\r\n")))
            self.textarea = None
        elif tag == "select" and self.select:
            chosen = [v for v, selected in self.options if selected] or [
                self.options[0][0]
            ]
            self.fields.append((self.select, chosen[0]))
            self.select = None


def posted(html: str, form_id: str = "lesson_form") -> dict[str, str]:
    """Return the form's fields as a browser posts them (textareas with \\r\\n)."""
    parser = FormFields(form_id)
    parser.feed(html)
    return dict(parser.fields)


def management(prefix: str, rows: list[dict], initial: int = 0) -> dict:
    data = {
        f"{prefix}-TOTAL_FORMS": str(len(rows)),
        f"{prefix}-INITIAL_FORMS": str(initial),
        f"{prefix}-MIN_NUM_FORMS": "0",
        f"{prefix}-MAX_NUM_FORMS": "1000",
    }
    for i, row in enumerate(rows):
        data.update({f"{prefix}-{i}-{k}": v for k, v in row.items()})
    return data


def new_lesson(module, *, steps=(), questions=(), **fields) -> dict:
    data = {
        "title": "Queues smooth bursts",
        "slug": "queues-smooth-bursts",
        "module": str(module.pk),
        "order": "2",
        "status": "draft",
        "summary": "Put work in a queue and let workers catch up.",
        "body": BODY,
        "objectives": "Explain why a queue absorbs a burst.\r\nPredict the wait.",
        "topics": "asynchronism and queues",
        "glossary": "cache",
        "engine": "cache",
        "preset_capacity": "500",
        "preset_policy": "lru",
        "preset_key_mode": "object",
        "preset_write_policy": "invalidate",
    }
    data.update(fields)
    data.update(management("steps", list(steps)))
    data.update(management("questions", list(questions)))
    return data


@pytest.fixture
def module():
    return Module.objects.create(slug="queues", title="Queues", order=4)


@pytest.fixture(autouse=True)
def terms():
    Term.objects.create(slug="cache", term="Cache", definition="Fast memory in front.")


def change_url(lesson: Lesson) -> str:
    return reverse("admin:lessons_lesson_change", args=[lesson.pk])


def test_an_instructor_creates_a_lesson_and_an_out_of_range_preset_is_refused(
    client, instructor, module
):
    page = client.post(ADD, new_lesson(module, preset_capacity="0"))
    assert page.status_code == 200
    assert "capacity must be an integer from 1 to 1000000" in page.content.decode()
    assert "preset_capacity" in page.context["adminform"].form.errors
    assert not Lesson.objects.exists() and not LessonVersion.objects.exists()

    step = {"order": "0", "title": "Resize", "actions": '[{"command": "resize"}]'}
    page = client.post(ADD, new_lesson(module, steps=[step]))
    assert page.status_code == 302
    lesson = Lesson.objects.get(slug="queues-smooth-bursts")
    assert lesson.status == "draft"
    assert lesson.preset == {"capacity": 500}  # defaults are not written out
    assert lesson.body == "# Queues\n\nA **queue** smooths bursts.\n"
    assert lesson.objectives == [
        "Explain why a queue absorbs a burst.",
        "Predict the wait.",
    ]
    assert lesson.steps.get().actions == [
        {"command": "resize", "args": {"capacity": 1000}}
    ]
    version = LessonVersion.objects.get(lesson=lesson)
    assert (version.author, version.note) == (instructor, "created in the admin")
    assert version.text == lesson_to_text(lesson_to_dict(lesson))


def test_the_form_has_a_field_per_engine_parameter_with_its_bounds_and_unit(
    client, instructor
):
    html = client.get(ADD + "?engine=cache").content.decode()
    assert 'name="preset_capacity"' in html and 'min="1"' in html
    assert "Cache capacity (items)" in html
    assert "Allowed: an integer from 1 to 1000000 items. Default: 1000." in html
    html = client.get(ADD + "?engine=deploy").content.decode()
    assert 'type="checkbox" name="preset_auto_rollback"' in html
    assert 'name="preset_capacity"' not in html


def test_the_preview_answers_the_student_page_with_its_simulation_and_saves_nothing(
    client, instructor, module
):
    page = client.post(reverse("admin:lessons_lesson_preview"), new_lesson(module))
    assert page.status_code == 200
    assert page["X-Frame-Options"] == "SAMEORIGIN"
    html = page.content.decode()
    assert "<h1>Queues</h1>" in html and "<strong>queue</strong>" in html
    assert 'id="sim"' in html and 'id="engine-decl"' in html
    assert '"capacity": 500' in html  # the unsaved preset drives the simulation
    assert "Sign out" not in html  # shown as a student sees it
    assert not Lesson.objects.exists() and not LessonVersion.objects.exists()

    page = client.post(
        reverse("admin:lessons_lesson_preview"), new_lesson(module, preset_capacity="0")
    )
    assert 'class="preview-errors"' in page.content.decode()
    assert "capacity must be an integer from 1 to 1000000" in page.content.decode()


def test_the_preview_of_an_edit_shows_the_edit_and_leaves_the_lesson_alone(
    client, instructor, module
):
    client.post(ADD, new_lesson(module))
    lesson = Lesson.objects.get()
    data = posted(client.get(change_url(lesson)).content.decode())
    data["body"] = "# Edited, not saved\r\n"
    url = reverse("admin:lessons_lesson_preview_change", args=[lesson.pk])
    assert "Edited, not saved" in client.post(url, data).content.decode()
    lesson.refresh_from_db()
    assert lesson.body.startswith("# Queues")
    assert LessonVersion.objects.count() == 1


def test_the_admin_and_its_preview_are_for_staff_only(client, module):
    student = User.objects.create_user("sam", password="pw-for-tests-only")
    client.force_login(student)
    for url in (ADD, reverse("admin:lessons_lesson_preview")):
        page = client.post(url, new_lesson(module))
        assert page.status_code == 302 and page["Location"].startswith("/admin/login/")
    assert not Lesson.objects.exists()


def test_the_preview_refuses_a_post_without_the_csrf_token(instructor, module):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(instructor)
    page = browser.post(reverse("admin:lessons_lesson_preview"), new_lesson(module))
    assert page.status_code == 403


def test_an_invalid_step_action_is_refused_naming_the_action_and_field(
    client, instructor, module
):
    steps = [
        {"order": "0", "title": "Warm up"},
        {
            "order": "1",
            "title": "Shrink",
            "actions": '[{"set": {"capacity": 0}}]',
        },
    ]
    page = client.post(ADD, new_lesson(module, steps=steps))
    html = page.content.decode()
    assert page.status_code == 200
    assert (
        "Action 1, setting capacity: capacity must be an integer from 1 to 1000000"
        in html
    )
    steps[1]["actions"] = '[{"command": "explode"}]'
    html = client.post(ADD, new_lesson(module, steps=steps)).content.decode()
    assert "Action 1, command: cache has no command &#x27;explode&#x27;" in html
    assert "its commands: " in html
    assert not Lesson.objects.exists()


# The rows the admin's actions editor posts for RICH's step, and its JSON.
ROWS = {
    "actions-rows": "2",
    "actions-0-kind": "command",
    "actions-0-command": "resize",
    "actions-0-arg-capacity": "100",
    "actions-0-after": "",
    "actions-1-kind": "set",
    "actions-1-set-0-name": "zipf_s",
    "actions-1-set-0-value": "0",
    "actions-1-after": "15",
}
JSON = '[{"command": "resize", "args": {"capacity": 100}}, {"set": {"zipf_s": 0.0}, "after": 15}]'


def step_with(fields: dict) -> dict:
    """Return a step whose fields named "actions..." are posted as its actions."""
    return {"order": "0", "title": "Shrink the cache", **fields}


def test_actions_posted_as_rows_save_what_the_same_json_saves(
    client, instructor, module
):
    client.post(ADD, new_lesson(module, steps=[step_with({"actions": JSON})]))
    from_json = Lesson.objects.get().steps.get().actions
    Lesson.objects.all().delete()
    page = client.post(ADD, new_lesson(module, steps=[step_with(ROWS)]))
    assert page.status_code == 302
    assert (
        Lesson.objects.get().steps.get().actions
        == from_json
        == [
            {"command": "resize", "args": {"capacity": 100}},
            {"set": {"zipf_s": 0.0}, "after": 15.0},
        ]
    )


def test_a_setting_row_may_change_several_settings_and_a_bool_is_posted_as_text(
    client, instructor, module
):
    rows = {
        "actions-rows": "1",
        "actions-0-kind": "set",
        "actions-0-set-0-name": "zipf_s",
        "actions-0-set-0-value": "0.9",
        "actions-0-set-1-name": "capacity",
        "actions-0-set-1-value": "1000",
    }
    client.post(ADD, new_lesson(module, steps=[step_with(rows)]))
    assert Lesson.objects.get().steps.get().actions == [
        {"set": {"zipf_s": 0.9, "capacity": 1000}}
    ]
    lesson = Lesson.objects.get()
    data = posted(client.get(change_url(lesson)).content.decode())
    data.update(
        {
            "engine": "failover",
            "steps-0-actions": "",
            "steps-0-actions-rows": "1",
            "steps-0-actions-0-kind": "set",
            "steps-0-actions-0-set-0-name": "standby",
            "steps-0-actions-0-set-0-value": "true",
        }
    )
    data = {k: v for k, v in data.items() if not k.startswith("preset_")}
    assert client.post(change_url(lesson), data).status_code == 302
    assert lesson.steps.get().actions == [{"set": {"standby": True}}]


def test_a_bad_row_is_refused_naming_the_action_and_its_field_with_what_is_allowed(
    client, instructor, module
):
    bad = {**ROWS, "actions-0-arg-capacity": "0", "actions-1-after": "4000"}
    page = client.post(ADD, new_lesson(module, steps=[step_with(bad)]))
    html = page.content.decode()
    assert page.status_code == 200 and not Lesson.objects.exists()
    assert (
        "Action 1, resize argument capacity: capacity must be an integer from 1 to "
        "1000000" in html
    )
    form = page.context["inline_admin_formsets"][0].formset.forms[0]
    assert form.fields["actions"].widget.row_errors == [
        {
            "row": 0,
            "field": "arg:capacity",
            "message": "capacity must be an integer from 1 to 1000000 items; got '0'",
        }
    ]
    # The rows come back as the editor draws them, so nothing typed is lost.
    assert "&quot;capacity&quot;: &quot;0&quot;" in html or '"capacity": "0"' in html

    bad = {**ROWS, "actions-1-set-0-name": "zipf_s", "actions-1-set-0-value": "9"}
    html = client.post(ADD, new_lesson(module, steps=[step_with(bad)])).content
    assert b"Action 2, setting zipf_s: zipf_s must be a number from 0 to" in html
    bad = {**ROWS, "actions-1-after": "soon"}
    html = client.post(ADD, new_lesson(module, steps=[step_with(bad)])).content
    assert (
        b"Action 2, after: must be a number of simulated seconds from 0 to 3600" in html
    )
    bad = {**ROWS, "actions-0-command": ""}
    html = client.post(ADD, new_lesson(module, steps=[step_with(bad)])).content
    assert b"Action 1, command: cache has no command &#x27;&#x27;" in html
    assert not Lesson.objects.exists()


def test_an_unchanged_step_posted_as_rows_is_not_an_edit(client, instructor, module):
    client.post(ADD, new_lesson(module, steps=[step_with(ROWS)]))
    lesson = Lesson.objects.get()
    data = posted(client.get(change_url(lesson)).content.decode())
    data.pop("steps-0-actions")
    data.update({"steps-0-" + k: v for k, v in ROWS.items()}, title="Renamed")
    assert client.post(change_url(lesson), data).status_code == 302
    assert LessonVersion.objects.latest("pk").note == "edited title"


def test_the_actions_help_says_what_the_textarea_takes(client, instructor):
    html = client.get(ADD + "?engine=cache").content.decode()
    assert "JSON list, one action a line" not in html
    assert "A JSON list of actions (line breaks do not matter)" in html
    assert re.search(r'<script src="[^"]*admin-actions[^"]*\.js" type="module">', html)


def test_a_question_with_two_right_choices_is_refused(client, instructor, module):
    question = {
        "order": "0",
        "kind": "choice",
        "prompt": "Which is evicted?",
        "choices": "* The oldest | yes\r\n* The least used | also yes",
        "tolerance": "0",
    }
    page = client.post(ADD, new_lesson(module, questions=[question]))
    assert "questions[0].choices: exactly one choice must be marked correct" in (
        page.content.decode()
    )
    assert not Lesson.objects.exists()


def test_students_never_see_a_draft_but_its_private_link_works(
    client, instructor, module
):
    client.post(ADD, new_lesson(module))
    lesson = Lesson.objects.get()
    assert client.get(lesson.get_absolute_url()).status_code == 404
    assert client.get(lesson.preview_url()).status_code == 200
    assert lesson.preview_url() in client.get(change_url(lesson)).content.decode()
    assert "viewsitelink" not in client.get(change_url(lesson)).content.decode()
    client.post(CHANGELIST, {"action": "publish", "_selected_action": [lesson.pk]})
    assert client.get(lesson.get_absolute_url()).status_code == 200
    assert "viewsitelink" in client.get(change_url(lesson)).content.decode()


def test_publish_edit_diff_and_revert(client, instructor, module):
    client.post(ADD, new_lesson(module))
    lesson = Lesson.objects.get()
    client.post(CHANGELIST, {"action": "publish", "_selected_action": [lesson.pk]})
    lesson.refresh_from_db()
    assert lesson.published
    published = LessonVersion.objects.filter(lesson=lesson).first()
    assert published.note == "published" and published.author == instructor

    data = posted(client.get(change_url(lesson)).content.decode())
    data["body"] = data["body"].replace("smooths bursts", "absorbs <bursts>")
    assert client.post(change_url(lesson), data).status_code == 302
    assert LessonVersion.objects.filter(lesson=lesson).first().note == "edited body"

    history = client.get(
        reverse("admin:lessons_lesson_history", args=[lesson.pk]), follow=True
    )
    html = history.content.decode()
    assert "<del>A **queue** smooths bursts.</del>" in html
    assert "<ins>A **queue** absorbs &lt;bursts&gt;.</ins>" in html  # escaped

    page = client.post(reverse("admin:lessons_lesson_revert", args=[published.pk]))
    assert page.status_code == 302
    lesson.refresh_from_db()
    assert lesson_to_text(lesson_to_dict(lesson)) == published.text
    assert (
        LessonVersion.objects.filter(lesson=lesson)
        .first()
        .note.startswith("reverted to ")
    )


def test_saving_an_untouched_form_changes_nothing(client, instructor):
    lesson = lesson_save(parse_lesson(RICH))
    before = lesson_to_dict(lesson)
    versions = LessonVersion.objects.count()
    data = posted(client.get(change_url(lesson)).content.decode())
    assert client.post(change_url(lesson), data).status_code == 302
    assert lesson_to_dict(Lesson.objects.get(pk=lesson.pk)) == before
    assert LessonVersion.objects.count() == versions


def test_an_instructor_removes_a_step_and_the_rest_keep_their_order(client, instructor):
    lesson = lesson_save(parse_lesson(RICH))
    data = posted(client.get(change_url(lesson)).content.decode())
    data["steps-0-DELETE"] = "on"
    data.update({"steps-1-order": "1", "steps-1-title": "Then this"})
    data["steps-TOTAL_FORMS"] = "2"
    assert client.post(change_url(lesson), data).status_code == 302
    assert [s.title for s in lesson.steps.all()] == ["Then this"]
    assert lesson.steps.get().order == 0
    assert LessonVersion.objects.filter(lesson=lesson).first().note == "edited steps"


def test_arranging_moves_lessons_between_modules_and_reorders_modules(
    client, instructor, module
):
    other = Module.objects.create(slug="caching", title="Caching", order=1)
    client.post(ADD, new_lesson(module, slug="a", title="A"))
    client.post(ADD, new_lesson(module, slug="b", title="B"))
    client.post(ADD, new_lesson(other, slug="c", title="C"))
    a, b, c = (Lesson.objects.get(slug=s) for s in "abc")
    url = reverse("admin:lessons_lesson_arrange")
    assert "Arrange lessons" in client.get(url).content.decode()

    layout = f'[{{"module": {module.pk}, "lessons": [{b.pk}, {c.pk}]}}, {{"module": {other.pk}, "lessons": [{a.pk}]}}]'
    assert client.post(url, {"layout": layout}).status_code == 302
    arranged = [
        (m.slug, [lesson.slug for lesson in m.lessons.order_by("order")])
        for m in Module.objects.order_by("order")
    ]
    assert arranged == [("queues", ["b", "c"]), ("caching", ["a"])]
    assert LessonVersion.objects.filter(lesson=a).first().note == "rearranged"

    missing = f'[{{"module": {module.pk}, "lessons": [{b.pk}]}}, {{"module": {other.pk}, "lessons": [{a.pk}]}}]'
    page = client.post(url, {"layout": missing})
    assert page.status_code == 400 and "the lessons changed" in page.content.decode()
    assert Lesson.objects.get(slug="c").module == module


def test_renaming_a_module_records_a_version_of_each_of_its_lessons(
    client, instructor, module
):
    client.post(ADD, new_lesson(module))
    url = reverse("admin:lessons_module_change", args=[module.pk])
    data = {"slug": "queues", "title": "Queues and workers", "order": "4"}
    assert client.post(url, data).status_code == 302
    version = LessonVersion.objects.first()
    assert 'module_title = "Queues and workers"' in version.text
    assert version.author == instructor


def export(client, lessons) -> bytes:
    page = client.post(
        CHANGELIST,
        {"action": "export_files", "_selected_action": [item.pk for item in lessons]},
    )
    assert page["Content-Type"] == "application/zip"
    return page.content


def test_export_then_import_gives_back_identical_lessons(client, instructor, module):
    lesson_save(parse_lesson(RICH))
    tricky = new_lesson(
        module,
        title='Quotes " and \\ backslashes | bars',
        body='# Title\r\n\r\n    indented code\r\n\r\nA """ triple \\ quote.\r\n',
        questions=[
            {
                "order": "0",
                "kind": "choice",
                "prompt": "Pick one",
                "choices": "* right \\| with a bar | because\r\n  it is\r\n- wrong | no",
                "tolerance": "0",
            },
            {
                "order": "1",
                "kind": "number",
                "prompt": "How many?",
                "answer": "2.5",
                "tolerance": "0.1",
                "unit": "s",
            },
        ],
        steps=[
            {
                "order": "0",
                "title": "Crash",
                "predict": "What then?\r\nThink.",
                "actions": '[{"command": "crash", "after": 5}]',
            }
        ],
    )
    assert client.post(ADD, tricky).status_code == 302
    lessons = list(Lesson.objects.select_related("module"))
    before = {item.slug: lesson_to_dict(item) for item in lessons}
    texts = {item.slug: lesson_to_text(before[item.slug]) for item in lessons}
    archive = export(client, lessons)
    with zipfile.ZipFile(io.BytesIO(archive)) as files:
        assert {name: files.read(name).decode() for name in files.namelist()} == {
            f"{slug}.md": text for slug, text in texts.items()
        }

    Lesson.objects.all().delete()
    upload = io.BytesIO(archive)
    upload.name = "lessons.zip"
    page = client.post(reverse("admin:lessons_lesson_import"), {"files": [upload]})
    assert page.status_code == 302
    after = {item.slug: lesson_to_dict(item) for item in Lesson.objects.all()}
    assert after == before
    assert {s: lesson_to_text(d) for s, d in after.items()} == texts


def test_an_import_is_all_or_nothing_and_names_the_file_and_field(
    client, instructor, module
):
    client.post(ADD, new_lesson(module))
    text = lesson_to_text(lesson_to_dict(Lesson.objects.get()))
    Lesson.objects.all().delete()
    good = io.BytesIO(text.replace("queues-smooth-bursts", "good").encode())
    good.name = "good.md"
    bad = io.BytesIO(text.replace("capacity = 500", "capacity = 0").encode())
    bad.name = "bad.md"
    unknown = io.BytesIO(
        text.replace('"cache"]', '"nope"]')
        .replace("queues-smooth-bursts", "other")
        .encode()
    )
    unknown.name = "terms.md"
    page = client.post(
        reverse("admin:lessons_lesson_import"), {"files": [good, bad, unknown]}
    )
    html = page.content.decode()
    assert page.status_code == 400
    assert (
        "bad.md: preset.capacity: capacity must be an integer from 1 to 1000000" in html
    )
    assert "terms.md: glossary: no term &#x27;nope&#x27;" in html
    assert not Lesson.objects.exists()


def test_history_outlives_its_lesson_and_no_one_can_delete_a_version(client, module):
    admin = User.objects.create_superuser("root", password="pw-for-tests-only")
    client.force_login(admin)
    client.post(ADD, new_lesson(module))
    lesson = Lesson.objects.get()
    version = LessonVersion.objects.get()
    delete = reverse("admin:lessons_lessonversion_delete", args=[version.pk])
    assert client.post(delete, {"post": "yes"}).status_code == 403
    client.post(
        reverse("admin:lessons_lesson_delete", args=[lesson.pk]), {"post": "yes"}
    )
    assert not Lesson.objects.exists() and LessonVersion.objects.count() == 1

    history = reverse("admin:lessons_lesson_versions", args=["queues-smooth-bursts"])
    assert "has been deleted" in client.get(history).content.decode()
    client.post(reverse("admin:lessons_lesson_revert", args=[version.pk]))
    assert Lesson.objects.get().body == lesson.body


def test_instructors_author_and_read_history_but_cannot_delete(instructor):
    assert instructor.has_perms(
        ["lessons.add_lesson", "lessons.change_lesson", "lessons.change_step"]
    )
    assert instructor.has_perm("lessons.view_lessonversion")
    assert not instructor.has_perm("lessons.delete_lesson")
    assert not instructor.has_perm("lessons.delete_lessonversion")


def test_choices_survive_being_written_as_lines_and_read_back():
    choices = [
        {"text": "a | b \\ c", "correct": True, "why": "first\n\nsecond | line"},
        {"text": "- dash", "correct": False, "why": "plain"},
    ]
    assert choices_from_text(choices_to_text(choices)) == choices


def test_a_forged_row_count_cannot_make_the_server_read_without_end():
    assert actions_from_rows({"a-rows": "many"}, "a") == []
    assert len(actions_from_rows({"a-rows": "100000000"}, "a")) == MAX_ROWS
    assert actions_from_rows({"a-rows": "1", "a-0-kind": "nothing"}, "a") == [{}]


def test_an_author_sets_a_steps_prediction_its_choices_and_its_figure(
    client, instructor, module
):
    step = step_with(
        {
            "predict": "Does the hit ratio fall tenfold?",
            "prediction": "choice",
            "choices": "Tenfold\r\nMuch less than tenfold\r\nNot at all",
            "measure": "hit_ratio_recent",
            "settle": "20",
            **ROWS,
        }
    )
    assert client.post(ADD, new_lesson(module, steps=[step])).status_code == 302
    saved = Lesson.objects.get().steps.get()
    assert (saved.prediction, saved.measure, saved.settle) == (
        "choice",
        "hit_ratio_recent",
        20.0,
    )
    assert saved.choices == ["Tenfold", "Much less than tenfold", "Not at all"]
    # The step's form offers the engine's own figures to measure.
    html = client.get(change_url(Lesson.objects.get())).content.decode()
    assert '<option value="hit_ratio_recent" selected>' in html
    assert '<option value="db_reads_per_s">Database reads (db_reads_per_s)' in html


def test_a_prediction_that_cannot_be_asked_is_refused_naming_its_field(
    client, instructor, module
):
    step = step_with(
        {
            "predict": "What happens?",
            "prediction": "choice",
            "choices": "Only one",
            "measure": "hit_ratio",
        }
    )
    html = client.post(ADD, new_lesson(module, steps=[step])).content.decode()
    assert "a choice prediction needs 2 to 6 choices" in html
    step.update(prediction="number", choices="", measure="")
    html = client.post(ADD, new_lesson(module, steps=[step])).content.decode()
    assert "is required with a prediction: one of hit_ratio, hits" in html
    assert not Lesson.objects.exists()
