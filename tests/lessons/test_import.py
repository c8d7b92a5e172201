"""Importing lesson files and zips in the admin: bounded, checked, and nothing lost."""

from __future__ import annotations

import io
import random
import re
import string
import zipfile

import pytest
from django.contrib.auth.models import Group, User
from django.core.cache import cache

from lessons import authoring
from lessons.models import Lesson, LessonVersion, Module
from lessons.services import lesson_save, parse_lesson

pytestmark = pytest.mark.django_db

IMPORT = "/admin/lessons/lesson/import/"


def lesson_text(
    slug: str,
    *,
    title: str = "",
    module: str = "caching",
    module_title: str = "Caching",
    module_order: int = 3,
    status: str | None = "published",
    tail: str = "",
) -> str:
    """Return a small valid lesson file; ``tail`` goes at the end of its front matter."""
    lines = [
        "+++",
        f'slug = "{slug}"',
        f'title = "{title or slug.replace("-", " ").capitalize()}"',
        f'module = "{module}"',
        f'module_title = "{module_title}"',
        f"module_order = {module_order}",
        'engine = "cache"',
    ]
    if status is not None:
        lines.append(f'status = "{status}"')
    return "\n".join([*lines, tail, "+++", f"# {slug}", ""])


def saved(slug: str, **fields) -> Lesson:
    return lesson_save(parse_lesson(lesson_text(slug, **fields)), note="set up")


def upload(name: str, data: bytes | str) -> io.BytesIO:
    handle = io.BytesIO(data.encode() if isinstance(data, str) else data)
    handle.name = name
    return handle


def zip_of(entries, method=zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", method) as archive:
        for name, data in entries:
            archive.writestr(name, data)
    return buffer.getvalue()


def errors_of(page) -> list[str]:
    assert page.status_code == 400
    assert "Nothing was imported" in page.content.decode()
    return page.context["errors"]


@pytest.fixture(autouse=True)
def no_pending_imports():
    yield
    cache.clear()


# Damaged and hostile zips -------------------------------------------------------


def _patched(data: bytes, name: bytes, offsets: dict[int, bytes]) -> bytes:
    """Return a one-entry zip with bytes replaced in both headers of its entry."""
    out = bytearray(data)
    central = out.find(b"PK\x01\x02")
    for offset, value in offsets.items():
        out[offset : offset + len(value)] = value  # local header
        out[central + offset + 2 : central + offset + 2 + len(value)] = value
    assert name in out
    return bytes(out)


def _damaged(kind: str) -> bytes:
    text = lesson_text("damaged").encode()
    good = zip_of([("damaged.md", text)])
    if kind == "truncated":
        return good[: len(good) // 2]
    if kind == "not-a-zip":
        return b"PK\x03\x04" + b"\x00" * 200
    if kind == "encrypted":
        return _patched(good, b"damaged.md", {6: bytes([good[6] | 1])})
    if kind == "unknown-compression":
        return _patched(good, b"damaged.md", {8: (99).to_bytes(2, "little")})
    stored = zip_of([("damaged.md", text)], zipfile.ZIP_STORED)
    return stored.replace(text, text.replace(b"damaged", b"dam4ged"), 1)  # bad CRC


@pytest.mark.parametrize(
    ("kind", "words"),
    [
        ("truncated", "lessons.zip: not a zip file, or a damaged one"),
        ("not-a-zip", "lessons.zip: not a zip file, or a damaged one"),
        (
            "encrypted",
            "lessons.zip/damaged.md: is encrypted; zip the lessons without a password",
        ),
        (
            "unknown-compression",
            "lessons.zip/damaged.md: is compressed with method 99, which cannot be "
            "read; compression must be one of stored, deflate",
        ),
        (
            "bad-crc",
            "lessons.zip/damaged.md: the zip is damaged (Bad CRC-32 for file "
            "'damaged.md'); zip the lessons again",
        ),
    ],
)
def test_a_damaged_zip_is_a_clear_error_and_imports_nothing(
    client, instructor, kind, words
):
    page = client.post(IMPORT, {"files": [upload("lessons.zip", _damaged(kind))]})
    assert errors_of(page) == [words]
    assert not Lesson.objects.exists()


@pytest.fixture
def nothing_is_read(monkeypatch):
    """Fail the test if any zip entry is decompressed."""

    write = zipfile.ZipFile.open

    def guarded(archive, name, mode="r", *args, **kwargs):
        assert mode == "w", f"{name} was read"
        return write(archive, name, mode, *args, **kwargs)

    monkeypatch.setattr(zipfile.ZipFile, "open", guarded)


def test_a_zip_bomb_is_refused_from_its_directory_before_anything_is_read(
    client, instructor, nothing_is_read
):
    megabyte = b"\n" * 1_000_000
    bomb = zip_of([(f"bomb-{i}.md", megabyte) for i in range(300)])
    assert len(bomb) < 400_000
    errors = errors_of(client.post(IMPORT, {"files": [upload("bomb.zip", bomb)]}))
    limit = authoring.MAX_COMPRESSION_RATIO
    for i, error in enumerate(errors):
        ratio = re.fullmatch(
            rf"bomb\.zip/bomb-{i}\.md: is compressed (\d+) to 1; a lesson file may "
            rf"be compressed at most {limit} to 1",
            error,
        )
        assert ratio and int(ratio[1]) > 1000
    assert len(errors) == 300


def test_an_entry_over_the_file_size_limit_is_refused_before_it_is_read(
    client, instructor, nothing_is_read
):
    noise = random.Random(1).choices(string.ascii_letters, k=1_000_001)
    archive = zip_of([("big.md", "".join(noise))])
    errors = errors_of(client.post(IMPORT, {"files": [upload("big.zip", archive)]}))
    assert errors == [
        "big.zip/big.md: is 1000001 bytes uncompressed; a lesson file may have at "
        "most 1000000"
    ]


def test_the_total_uncompressed_size_is_bounded_before_anything_is_read(
    client, instructor, nothing_is_read, monkeypatch
):
    monkeypatch.setattr(authoring, "MAX_IMPORT_BYTES", 50_000)
    noise = random.Random(2)
    entries = [
        (f"part-{i}.md", "".join(noise.choices(string.ascii_letters, k=20_000)))
        for i in range(3)
    ]
    archive = zip_of(entries)
    errors = errors_of(client.post(IMPORT, {"files": [upload("parts.zip", archive)]}))
    assert errors == [
        "parts.zip: its lesson files come to 60000 bytes uncompressed; an import "
        "may have at most 50000 bytes of them"
    ]


def test_the_number_of_lesson_files_is_bounded_before_anything_is_read(
    client, instructor, nothing_is_read
):
    count = authoring.MAX_IMPORT_FILES + 1
    archive = zip_of([(f"l-{i}.md", "+++") for i in range(count)])
    errors = errors_of(client.post(IMPORT, {"files": [upload("many.zip", archive)]}))
    assert errors == [
        f"many.zip: holds {count} lesson files; an import may have at most "
        f"{authoring.MAX_IMPORT_FILES}"
    ]


# Every text fits its column --------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"title": "T" * 250}, "title: must be at most 200 characters; it has 250"),
        ({"slug": "s" * 81}, "slug: must be at most 50 characters; it has 81"),
        (
            {"module": "m" * 51},
            "module: must be at most 50 characters; it has 51",
        ),
        (
            {"module_title": "M" * 121},
            "module_title: must be at most 120 characters; it has 121",
        ),
        (
            {"tail": f'[[steps]]\ntitle = "{"S" * 201}"'},
            "steps[0].title: must be at most 200 characters; it has 201",
        ),
        (
            {"tail": f'[[steps]]\ntitle = "Go"\nbutton = "{"B" * 61}"'},
            "steps[0].button: must be at most 60 characters; it has 61",
        ),
        (
            {
                "tail": '[[questions]]\nkind = "number"\nprompt = "How many?"\n'
                f'answer = 1.0\nunit = "{"u" * 31}"'
            },
            "questions[0].unit: must be at most 30 characters; it has 31",
        ),
    ],
)
def test_a_text_longer_than_its_column_is_refused_naming_the_field_and_limit(
    client, instructor, fields, error
):
    slug = fields.pop("slug", "long-texts")
    page = client.post(
        IMPORT, {"files": [upload("long.md", lesson_text(slug, **fields))]}
    )
    assert errors_of(page) == [f"long.md: {error}"]
    assert not Lesson.objects.exists() and not Module.objects.exists()


def test_a_long_file_name_still_fits_the_history_note(client, instructor):
    name = "n" * 240 + ".md"
    page = client.post(IMPORT, {"files": [upload(name, lesson_text("named"))]})
    assert page.status_code == 302
    note = LessonVersion.objects.get(slug="named").note
    assert note.startswith("imported from ")
    assert len(note) == LessonVersion._meta.get_field("note").max_length


# Status -------------------------------------------------------------------------------


def test_a_file_without_a_status_keeps_the_current_one_and_a_new_lesson_is_a_draft(
    client, instructor
):
    saved("was-published", status="published")
    saved("was-draft", status="draft")
    files = [
        upload(f"{slug}.md", lesson_text(slug, status=None))
        for slug in ("was-published", "was-draft", "brand-new")
    ]
    assert client.post(IMPORT, {"files": files}).status_code == 302
    assert dict(Lesson.objects.values_list("slug", "status")) == {
        "was-published": "published",
        "was-draft": "draft",
        "brand-new": "draft",
    }


def test_a_status_in_the_file_is_applied(client, instructor):
    saved("to-publish", status="draft")
    text = lesson_text("to-publish", status="published")
    assert client.post(IMPORT, {"files": [upload("p.md", text)]}).status_code == 302
    assert Lesson.objects.get().status == "published"


# Module changes ------------------------------------------------------------------------


@pytest.fixture
def caching_module():
    """A module of three lessons, as a class would have it."""
    for slug in ("first", "second", "third"):
        saved(slug, title=slug.capitalize())
    return Module.objects.get(slug="caching")


def confirmation_form(html: str) -> dict[str, str]:
    form = html[html.index('id="confirm-import"') :]
    return dict(re.findall(r'name="(pending|confirm)" value="([^"]+)"', form))


def test_module_changes_are_shown_first_and_nothing_changes_until_confirmed(
    client, instructor, caching_module
):
    text = lesson_text("first", module_title="Caches", module_order=9)
    page = client.post(IMPORT, {"files": [upload("first.md", text)]})
    html = page.content.decode()
    assert page.status_code == 200
    assert "Nothing has been imported yet." in html
    assert "title “Caching” becomes “Caches”; order 3 becomes 9." in html
    assert "Its other 2 lessons: Second, Third." in html
    caching_module.refresh_from_db()
    assert (caching_module.title, caching_module.order) == ("Caching", 3)
    assert LessonVersion.objects.count() == 3

    page = client.post(IMPORT, confirmation_form(html))
    assert page.status_code == 302
    caching_module.refresh_from_db()
    assert (caching_module.title, caching_module.order) == ("Caches", 9)
    notes = dict(
        LessonVersion.objects.filter(author=instructor).values_list("slug", "note")
    )
    assert notes == {
        "first": "imported from first.md",
        "second": "module caching changed by an import",
        "third": "module caching changed by an import",
    }
    for slug in ("second", "third"):
        latest = LessonVersion.objects.filter(slug=slug).first()
        assert 'module_title = "Caches"' in latest.text


def test_a_confirmation_of_changes_that_no_longer_hold_asks_again(
    client, instructor, caching_module
):
    text = lesson_text("first", module_title="Caches")
    page = client.post(IMPORT, {"files": [upload("first.md", text)]})
    form = confirmation_form(page.content.decode())
    caching_module.order = 5  # someone moved the module meanwhile
    caching_module.save()

    page = client.post(IMPORT, form)
    html = page.content.decode()
    assert page.status_code == 200
    assert "The modules changed since you were asked" in html
    assert "order 5 becomes 3" in html
    assert Module.objects.get().title == "Caching"


def test_an_import_whose_files_were_dropped_says_so(client, instructor, caching_module):
    text = lesson_text("first", module_title="Caches")
    page = client.post(IMPORT, {"files": [upload("first.md", text)]})
    form = confirmation_form(page.content.decode())
    cache.clear()
    assert errors_of(client.post(IMPORT, form)) == [
        "this import waited too long and was dropped: upload it again"
    ]
    assert Module.objects.get().title == "Caching"


def test_another_instructor_cannot_confirm_an_import_that_is_not_theirs(
    client, instructor, caching_module
):
    text = lesson_text("first", module_title="Caches")
    form = confirmation_form(
        client.post(IMPORT, {"files": [upload("first.md", text)]}).content.decode()
    )
    other = User.objects.create_user(
        "otto", password="pw-for-tests-only", is_staff=True
    )
    other.groups.add(Group.objects.get(name="Instructors"))
    client.force_login(other)
    assert errors_of(client.post(IMPORT, form))
    assert Module.objects.get().title == "Caching"


def test_importing_every_lesson_of_a_module_changes_it_at_once(
    client, instructor, caching_module
):
    files = [
        upload(f"{slug}.md", lesson_text(slug, module_title="Caches"))
        for slug in ("first", "second", "third")
    ]
    assert client.post(IMPORT, {"files": files}).status_code == 302
    assert Module.objects.get().title == "Caches"


def test_files_that_disagree_about_their_module_are_refused(client, instructor):
    files = [
        upload("a.md", lesson_text("a", module_title="Caching")),
        upload("b.md", lesson_text("b", module_title="Caches")),
    ]
    assert errors_of(client.post(IMPORT, {"files": files})) == [
        "b.md: module_title: 'Caches' differs from 'Caching' in a.md, for the same "
        "module 'caching'"
    ]


def test_a_version_with_a_text_longer_than_its_column_is_not_reverted_to(
    client, instructor
):
    lesson = saved("reverted")
    long = lesson_text("reverted", title="T" * 250)
    version = LessonVersion.objects.create(lesson=lesson, slug="reverted", text=long)
    page = client.post(
        f"/admin/lessons/lesson/versions/{version.pk}/revert/", follow=True
    )
    assert "title: must be at most 200 characters; it has 250" in page.content.decode()
    lesson.refresh_from_db()
    assert lesson.title == "Reverted"
