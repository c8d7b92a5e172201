"""A lesson page is light enough for a class on school Wi-Fi, and cached for a year."""

from __future__ import annotations

import re

import pytest

from tests.browser.conftest import own_server, serving
from tests.stack import manage

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

LESSON = "/lessons/caching-and-eviction/"
BUDGET = 1_500_000  # bytes over the wire, the page and everything it loads
YEAR = 31_536_000
HASHED = re.compile(r"\.[0-9a-f]{12}\.\w+$")


@pytest.fixture(scope="module")
def collected_url(app_env, tmp_path_factory):
    """A server as `make run` starts it: after `collectstatic`."""
    tmp = tmp_path_factory.mktemp("collected")
    env = own_server(app_env, tmp, STATIC_ROOT=str(tmp / "static"))
    manage(env, "collectstatic", "--noinput")
    with serving(env, tmp / "serve.log") as url:
        yield url


def visit(page, url):
    """Open the lesson, run it to its first chart point; return every response."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    responses, wire = {}, {}
    cdp.on(
        "Network.responseReceived",
        lambda e: responses.__setitem__(
            e["requestId"],
            {
                "path": e["response"]["url"].removeprefix(url),
                "headers": {k.lower(): v for k, v in e["response"]["headers"].items()},
            },
        ),
    )
    cdp.on(
        "Network.loadingFinished",
        lambda e: wire.__setitem__(e["requestId"], e["encodedDataLength"]),
    )
    page.goto(f"{url}{LESSON}")
    page.wait_for_selector(".sim[data-ready=true]", timeout=30_000)
    page.click("#sim .btn-primary")
    page.wait_for_function(
        "() => { const p = document.querySelector('.chart-plot'); return p && p.data && p.data[0].x.length > 0; }",
        timeout=30_000,
    )
    page.click("#sim button:text('Stop')")
    page.wait_for_selector(".sim[data-status=stopped]", timeout=10_000)
    return [{**responses[rid], "bytes": size} for rid, size in wire.items()]


def test_the_lesson_page_and_all_it_loads_fit_in_the_budget_and_draw_a_chart(
    page, collected_url
):
    responses = visit(page, collected_url)
    total = sum(r["bytes"] for r in responses)
    assert total <= BUDGET, sorted((r["bytes"], r["path"]) for r in responses)
    plotly = next(r for r in responses if r["path"].startswith("/static/plotly/"))
    assert plotly["headers"]["content-encoding"] == "br"
    # Everything static it loaded, the chart modules imported at run time too.
    loaded = [r["path"] for r in responses if r["path"].startswith("/static/")]
    assert any("/js/charts/" in path for path in loaded)
    assert [path for path in loaded if not HASHED.search(path)] == []
    assert page.errors == []


def test_the_page_names_hashed_files_that_are_compressed_and_cached_for_a_year(
    page, collected_url
):
    visit(page, collected_url)
    named = page.eval_on_selector_all(
        "script[src], link[href]",
        "(els) => els.map((e) => new URL(e.src || e.href).pathname)",
    )
    static = [path for path in named if path.startswith("/static/")]
    assert len(static) >= 5  # favicon, css, theme, plotly, panel, lesson
    for path in static:
        assert HASHED.search(path), path
        response = page.request.get(
            f"{collected_url}{path}", headers={"Accept-Encoding": "br, gzip"}
        )
        assert response.ok, path
        cache = response.headers["cache-control"]
        assert "immutable" in cache, path
        assert int(re.search(r"max-age=(\d+)", cache)[1]) >= YEAR, path
        assert response.headers.get("content-encoding") == "br", path
    gzip = page.request.get(
        f"{collected_url}{next(p for p in static if '/plotly/' in p)}",
        headers={"Accept-Encoding": "gzip"},
    )
    assert gzip.headers["content-encoding"] == "gzip"


def test_a_file_under_its_plain_name_is_not_cached_for_long(page, collected_url):
    response = page.request.get(f"{collected_url}/static/js/panel.js")
    assert response.ok
    assert "immutable" not in response.headers["cache-control"]
