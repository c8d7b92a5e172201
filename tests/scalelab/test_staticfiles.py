"""Static files get hashed names once collected, and never a stale or missing one."""

from __future__ import annotations

import os
import time

import pytest
from django.contrib.staticfiles import finders
from django.core.management import call_command
from django.test import override_settings

from scalelab.staticfiles import PlotlyFinder, StaticStorage


@pytest.fixture
def sources(tmp_path):
    src = tmp_path / "src" / "js"
    src.mkdir(parents=True)
    # Long enough to be worth compressing: smaller files are sent as they are.
    (src / "app.js").write_text('import { ok } from "./lib.js";\n' + "ok();\n" * 200)
    (src / "lib.js").write_text("export function ok() {}\n")
    root = tmp_path / "static"
    with override_settings(
        STATIC_ROOT=root,
        STATICFILES_DIRS=[tmp_path / "src"],
        STATICFILES_FINDERS=["django.contrib.staticfiles.finders.FileSystemFinder"],
    ):
        finders.get_finder.cache_clear()
        yield src, root
    finders.get_finder.cache_clear()


def collect():
    call_command("collectstatic", "--noinput", verbosity=0)
    return StaticStorage()


def test_a_collected_module_has_a_hashed_name_and_imports_hashed_modules(sources):
    _, root = sources
    storage = collect()
    app, lib = storage.url("js/app.js"), storage.url("js/lib.js")
    assert app != "/static/js/app.js"
    assert app.startswith("/static/js/app.")
    lib_name = lib.removeprefix("/static/js/")
    assert f'from "./{lib_name}"' in (root / app.removeprefix("/static/")).read_text()
    assert (root / f"{app.removeprefix('/static/')}.br").exists()
    assert (root / f"{app.removeprefix('/static/')}.gz").exists()


def test_a_file_added_after_collecting_gets_its_plain_name_not_an_error(sources):
    src, _ = sources
    storage = collect()
    (src / "new.js").write_text("export {};\n")
    assert storage.url("js/new.js") == "/static/js/new.js"


def test_a_source_edited_after_collecting_puts_every_file_back_on_its_plain_name(
    sources,
):
    src, _ = sources
    collect()
    later = time.time() + 5
    os.utime(src / "lib.js", (later, later))
    assert StaticStorage().url("js/app.js") == "/static/js/app.js"


def test_nothing_collected_means_plain_names():
    with override_settings(STATIC_ROOT="/nonexistent-scalelab-static"):
        assert StaticStorage().url("js/panel.js") == "/static/js/panel.js"


def test_of_the_plotly_package_only_plotly_js_is_collected():
    finder = PlotlyFinder()
    assert [path for path, _ in finder.list(None)] == ["plotly.min.js"]
    assert finder.find("plotly/plotly.min.js").endswith("plotly.min.js")
    assert finder.find("plotly/widgetbundle.js") is None


async def streamed(response) -> bytes:
    return b"".join([chunk async for chunk in response.streaming_content])


async def test_a_source_edited_while_serving_goes_out_whole_not_at_its_old_length(
    sources,
):
    # Nothing collected: pages name the sources, which the server serves as they
    # are now, even when edited after it started (longer, then shorter).
    from django.test import AsyncClient

    src, _ = sources
    client = AsyncClient()
    first = await client.get("/static/js/lib.js")
    assert await streamed(first) == b"export function ok() {}\n"
    longer = "export function ok() { return 'a longer body than before'; }\n"
    (src / "lib.js").write_text(longer)
    again = await client.get("/static/js/lib.js")
    assert (await streamed(again)).decode() == longer
    assert int(again["Content-Length"]) == len(longer)
    (src / "lib.js").write_text("export {};\n")
    assert await streamed(await client.get("/static/js/lib.js")) == b"export {};\n"
    (src / "lib.js").unlink()
    assert (await client.get("/static/js/lib.js")).status_code == 404
