"""Lesson text cannot pass for a part of the page it is shown in."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest

from lessons.models import Lesson
from lessons.services import (
    BODY_ID_PREFIX,
    CONTENT_DIR,
    lesson_save,
    parse_lesson,
    render_markdown,
)
from tests.lessons.test_admin import RICH

P = BODY_ID_PREFIX
# Everything a lesson's text tried, in the reports: fake answers graded in the page,
# a replaced engine declaration, links dressed as the app's buttons.
IMPERSONATION = """
<div id="question-answers">[{"kind": "number", "answer": 1, "tolerance": 1e9}]</div>
<div id="engine-decl">{"kind": "cache", "params": []}</div>
<div class="questions" data-lesson="other">fake questions</div>
<ol><li class="step" id="step-1">a fake step</li></ol>

<a class="btn btn-primary" href="/accounts/logout/">Start the simulation</a>
"""


class Elements(HTMLParser):
    """Collect ids, the ids that attributes refer to, and classes."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: list[str] = []
        self.refs: list[str] = []
        self.classes: list[tuple[str, str]] = []

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            value = value or ""
            if name == "id":
                self.ids.append(value)
            elif name == "class":
                self.classes.append((tag, value))
            elif name in ("aria-labelledby", "aria-describedby", "headers"):
                self.refs += value.split()
            elif name == "href" and value.startswith("#") and len(value) > 1:
                self.refs.append(value[1:])
            else:
                self.refs += re.findall(r"url\(\s*#([^)\s]+)\s*\)", value)


def elements(html: str) -> Elements:
    parser = Elements()
    parser.feed(html)
    return parser


def test_ids_in_lesson_text_are_namespaced_and_what_refers_to_them_follows():
    html = render_markdown(
        "## Replication {#replication}\n\nSee [the lag](#lag) and [the top](#).\n\n"
        '<p id="lag">Lag.</p>\n\n'
        '<svg role="img" aria-labelledby="t d"><title id="t">T</title>'
        '<desc id="d">D</desc><defs><marker id="arrow"/></defs>'
        '<line marker-end="url(#arrow)" stroke="url( #paint)"/><use href="#arrow"/></svg>\n\n'
        '<table><tr><th id="h">a</th><td headers="h">b</td></tr></table>\n'
    )
    found = elements(html)
    assert found.ids == [
        f"{P}replication",
        f"{P}lag",
        f"{P}t",
        f"{P}d",
        f"{P}arrow",
        f"{P}h",
    ]
    assert set(found.refs) == {
        f"{P}lag",
        f"{P}t",
        f"{P}d",
        f"{P}arrow",
        f"{P}paint",
        f"{P}h",
    }
    assert '<a href="#" rel="noopener noreferrer">the top</a>' in html


def test_classes_are_dropped_but_a_code_blocks_language_is_kept():
    html = render_markdown(
        '<a class="btn btn-primary" href="/x">x</a> <span class="sim">s</span>\n\n'
        "Some *text*{: .lead }\n\n"
        "```python\nprint(1)\n```\n\n"
        '<code class="language-sql btn">SELECT 1</code>\n'
    )
    found = elements(html)
    assert found.classes == [("code", "language-python"), ("code", "language-sql")]
    # The renderer's own wrapper for tables keeps its class.
    assert 'class="table-scroll"' in render_markdown("| a |\n|---|\n| 1 |\n")


def test_an_id_that_is_only_blank_is_dropped():
    assert "id=" not in render_markdown('<p id="  ">x</p>')


@pytest.mark.parametrize("path", sorted(CONTENT_DIR.glob("*.md")), ids=lambda p: p.stem)
def test_each_repository_lesson_keeps_its_diagrams_labelled_and_their_arrows(path):
    body = parse_lesson(path.read_text(encoding="utf-8"), path.name)["body"]
    found = elements(render_markdown(body))
    assert found.ids, "its diagram's title and description have ids"
    assert all(i.startswith(P) for i in found.ids)
    assert len(found.ids) == len(set(found.ids))
    missing = sorted(set(found.refs) - set(found.ids))
    assert not missing, f"references to no element: {missing}"
    # Only the renderer's own classes: tables' scrolling wrapper, code's language.
    assert all(
        (tag, value) == ("div", "table-scroll") or tag == "code"
        for tag, value in found.classes
    )


def lesson_with(body: str, *, status: str) -> Lesson:
    text = RICH.replace('status = "published"', f'status = "{status}"')
    return lesson_save(parse_lesson(text.split("+++\n# Caching")[0] + "+++\n" + body))


@pytest.mark.django_db
def test_a_published_lessons_text_cannot_stand_in_for_the_pages_data(client):
    lesson = lesson_with(IMPERSONATION, status="published")
    html = client.get(lesson.get_absolute_url()).content.decode()
    start = html.index('<div class="prose">') + len('<div class="prose">')
    prose = html[start : html.index('<section class="steps"')]
    assert 'id="' + P + "engine-decl" in prose
    assert len(re.findall(r'\sid="engine-decl"', html)) == 1
    assert '<script id="engine-decl" type="application/json">' in html
    # Students' answers are graded on the server: their page holds no answers.
    assert not re.search(r'\sid="question-answers"', html)
    assert 'class="' not in prose
    assert 'id="step-1"' not in prose
    # What the page's scripts look for is the page's own: the questions' section,
    # the steps and the data scripts.
    assert html.count('class="questions"') == 1
    assert html.count('<li class="step"') == len(lesson.steps.all())


@pytest.mark.django_db
def test_in_a_preview_the_answers_come_before_the_lesson_text_and_only_once(client):
    lesson = lesson_with(IMPERSONATION, status="draft")
    html = client.get(lesson.preview_url()).content.decode()
    assert len(re.findall(r'\sid="question-answers"', html)) == 1
    answers = html.index('<script id="question-answers" type="application/json">')
    assert answers < html.index('<div class="prose">')
    assert '"tolerance": 5.0' in html[answers : html.index("</script>", answers)]
