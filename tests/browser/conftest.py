from __future__ import annotations

import contextlib
import os
import shutil
import sys

import pytest

from tests.stack import Process, free_port, manage, wait_for_http

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def app_env(tmp_path_factory):
    """The environment of the test server: its own SQLite file, embedded mode."""
    tmp = tmp_path_factory.mktemp("app")
    env = {
        k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")
    }
    env.update(
        DATABASE_URL=f"sqlite:///{tmp / 'db.sqlite3'}",
        DJANGO_SETTINGS_MODULE="scalelab.settings",
        SCALELAB_RUNS_PER_VISITOR="50",
    )
    manage(env, "migrate", "--noinput")
    manage(env, "loadlessons")
    return env


@contextlib.contextmanager
def serving(env, log):
    """`manage.py serve` in embedded mode, as `make run` starts it; yield its URL."""
    port = free_port()
    server = Process(
        [sys.executable, "manage.py", "serve", "--port", str(port)], env, log
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{url}/", proc=server)
        yield url
    finally:
        server.stop()
        if os.environ.get("SCALELAB_SHOW_SERVER_LOG"):
            print(server.output())


def own_server(app_env, tmp, **changes):
    """A server of a module's own: its own database (an embedded worker takes the
    runs of its database that no worker of its own holds, so two servers must not
    share one), with the environment changed (a value of None removes a variable).
    """
    env = {**app_env, "DATABASE_URL": f"sqlite:///{tmp / 'db.sqlite3'}"}
    for name, value in changes.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    manage(env, "migrate", "--noinput")
    manage(env, "loadlessons")
    return env


@pytest.fixture(scope="session")
def app_url(app_env, tmp_path_factory):
    """ScaleLab served by `manage.py serve` in embedded mode, as `make run` does."""
    with serving(app_env, tmp_path_factory.mktemp("log") / "serve.log") as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    # Module scope: Playwright's sync API holds an event loop in this thread while it
    # runs, which asyncio tests after the browser modules must not find.
    from playwright.sync_api import sync_playwright

    if not os.path.exists(CHROMIUM):
        pytest.fail(
            "chromium is missing: `make test` installs it (apt-get install -y chromium)"
        )
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, request):
    size = getattr(request, "param", {"width": 1400, "height": 900})
    context = browser.new_context(viewport=size)
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: m.type == "error" and errors.append(m.text))
    page.errors = errors
    yield page
    context.close()


def answer_prediction(page, item) -> None:
    """Answer a guided step's prediction, if it asks one: its first choice, or 1.

    ``item`` is the step's ``li`` locator; a prediction already locked is left alone.
    """
    form = item.locator("form.prediction")
    if not form.count() or form.get_attribute("data-phase") == "revealed":
        return
    radios = form.locator("input[type=radio]")
    if radios.count():
        radios.first.check()
    else:
        form.locator("input[type=number]").fill("1")
    form.locator("button[type=submit]").click()
    page.wait_for_function(
        "(f) => f.dataset.phase !== 'unanswered'",
        arg=form.element_handle(),
        timeout=10_000,
    )


def play_step(page, label: str) -> None:
    """Press the guided step's button named ``label``, its prediction answered first."""
    button = page.locator(f"li.step [data-step-actions]:text('{label}')")
    answer_prediction(page, button.locator("xpath=ancestor::li[1]"))
    button.click()


# The live pictures' tests (tests/browser/test_pictures_*.py) share these.

STATE_OF = """(name) => {
  for (const g of document.querySelectorAll('#sim .picture .pic-node')) {
    const n = g.querySelector('.pic-name');
    if (n && n.textContent === name) return g.dataset.state || '';
  }
  return null;
}"""
"""A function of the page: the state of the picture's component named ``name``
(``''`` when it has none), or null when there is no such component."""


def start_run(page, app_url, kind, speed="8", *, selects=None, numbers=None):
    """Open the sandbox of engine ``kind``, set its parameters (``selects`` by
    choice, ``numbers`` typed in), press Run at ``speed`` and wait for 5 frames."""
    page.goto(f"{app_url}/sandbox/{kind}/")
    page.wait_for_selector(".sim[data-ready=true]", timeout=20_000)
    for name, value in (selects or {}).items():
        page.select_option(f"#sim [data-param={name}] select", value)
    for name, value in (numbers or {}).items():
        field = f"#sim [data-param={name}] input[type=number]"
        page.fill(field, str(value))
        page.press(field, "Tab")
    page.select_option("#sim-speed", speed)
    page.click("#sim .btn-primary")
    page.wait_for_function(
        "() => Number(document.querySelector('.sim').dataset.seq) >= 5",
        timeout=20_000,
    )


def wait_for_command(page, name, before=None):
    """Wait until the run's last command is one named ``name`` (and, given
    ``before``, the last command read before it was sent, a newer one)."""
    page.wait_for_function(
        "([name, before]) => { const c = document.querySelector('.sim')"
        ".dataset.lastCommand; return Boolean(c) && c !== before"
        " && c.startsWith(name + '@'); }",
        arg=[name, before],
        timeout=10_000,
    )


def wait_for_state(page, name, state):
    """Wait until the picture's component named ``name`` says ``state``."""
    page.wait_for_function(
        f"([name, state]) => ({STATE_OF})(name) === state",
        arg=[name, state],
        timeout=10_000,
    )


def wait_for_change(page, selector="#sim .picture svg"):
    """Wait until the text of ``selector`` (the picture's drawing) changes from
    what it is now."""
    before = page.text_content(selector)
    page.wait_for_function(
        "([sel, before]) => document.querySelector(sel).textContent !== before",
        arg=[selector, before],
        timeout=10_000,
    )


def wait_for_words(page, test, timeout=10_000):
    """Wait until the picture's sentence passes ``test``, a JavaScript function of
    its text: ``"(t) => t.includes('server 2 down')"``."""
    page.wait_for_function(
        f"() => ({test})(document.querySelector('#sim .picture-words').textContent)",
        timeout=timeout,
    )


def picture_text(page):
    """All the text of the picture's drawing."""
    return page.text_content("#sim .picture svg")


def button(page, label_start):
    """The picture's button whose label starts with ``label_start``."""
    return page.locator(f".picture [role=button][aria-label^='{label_start}']")
