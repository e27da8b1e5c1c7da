"""Fixtures of the browser tests: the real app on waitress with the demo loaded, and one headless Chromium.

Each test gets its own server and SQLite file (the demo users, password PASSWORD) so no test sees another's
requests: the file is a copy of one made once per run (per xdist worker) with the demo loaded. The browser is
started once per run (per worker) and each test (and each user in it) gets a fresh context.
CSRF stays on: the browser posts the real forms with the token the page gave it.
`mail_web` is the same with mail: the app's own sender (web.mailer) delivers the outbox to a real SMTP server
(aiosmtpd) on loopback, so a test can read what actually arrived.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path

import pytest
import waitress
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright
from waitress import wasyncore

from engine.db.connection import make_engine, make_sessionmaker
from engine.db.migrate import upgrade
from engine.demo import load_demo
from engine.mail import outbox
from engine.settings import REPO_ROOT, Settings
from engine.versions import shipped
from tests.helpers import SECRET
from tests.smtp import SmtpServer

# `make test` sets CIVICFLOW_CHROMIUM; Debian's chromium is the default. Playwright never downloads one.
CHROMIUM = Path(os.environ.get("CIVICFLOW_CHROMIUM") or "/usr/bin/chromium")
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PASSWORD = "browser-test-password"
SCREENSHOTS = REPO_ROOT / "test-artifacts" / "screenshots"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
# Long enough for a loaded CI machine, short enough that a missing element fails in seconds, not half a minute.
TIMEOUT_MS = 10_000
# The app's sender runs every 15 s in `civicflow serve`; here often enough that a letter arrives within a second.
MAIL_EVERY_SECONDS = 0.3
MAIL_TIMEOUT_SECONDS = 10.0


@pytest.fixture(scope="session")
def chromium() -> Browser:
    """One headless Chromium for the whole run; a missing browser is a failure, never a skip."""
    if not CHROMIUM.is_file():
        pytest.fail(
            f"Chromium is not installed at {CHROMIUM}: the browser tests need it. `make browser` installs "
            "Debian's chromium (apt-get install chromium); set CIVICFLOW_CHROMIUM to use another binary.",
            pytrace=False,
        )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        yield browser
        browser.close()


def _stop(server, thread: threading.Thread) -> None:
    """Close every socket from inside the server's own loop (no cross-thread close), then stop its workers."""
    server.trigger.pull_trigger(lambda: wasyncore.close_all(server._map))
    thread.join(timeout=10)
    server.task_dispatcher.shutdown()
    assert not thread.is_alive(), "the test server did not stop"


def _settings(tmp_path: Path) -> Settings:
    """Settings of one test's server: its own SQLite file and instance folder, cookies over plain http."""
    return Settings.from_env(
        instance_path=tmp_path,
        database_url=f"sqlite:///{tmp_path}/civicflow.sqlite3",
        secret_key=SECRET,
        secure_cookies=False,
    )


class DemoDatabase:
    """A SQLite file with the demo loaded (migrated, the shipped diagrams, the demo's people and accounts), made on
    first use (inside a test, so with the tests' cheap password hashing) and copied for each test."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.path: Path | None = None

    def copy_to(self, settings: Settings) -> None:
        """Put a copy of the demo database where the settings' database URL says."""
        if self.path is None:
            path = self.folder / "demo.sqlite3"
            url = f"sqlite:///{path}"
            engine = make_engine(url)
            try:
                upgrade(engine)
                made = dataclasses.replace(settings, database_url=url, instance_path=self.folder)
                with make_sessionmaker(engine)(info={"settings": made}) as session:
                    shipped.sync_workflows(session)
                    load_demo(session, PASSWORD)
                    session.commit()
                with engine.connect() as connection:
                    connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
            finally:
                engine.dispose()
            self.path = path
        shutil.copyfile(self.path, settings.database_url.removeprefix("sqlite:///"))


@pytest.fixture(scope="session")
def demo_database(tmp_path_factory) -> DemoDatabase:
    """This worker's demo database, copied for each test's server."""
    return DemoDatabase(tmp_path_factory.mktemp("demo"))


@contextmanager
def _serving(settings: Settings, demo: DemoDatabase) -> Iterator[tuple[str, object]]:
    """The real app on waitress at http://127.0.0.1:<free port>, with the demo loaded: (base URL, app)."""
    from web import create_app

    demo.copy_to(settings)
    app = create_app(settings=settings)
    server = waitress.create_server(app, host="127.0.0.1", port=0, threads=4, ident="civicflow-test")
    thread = threading.Thread(target=server.run, name="civicflow-test-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.effective_port}", app
    finally:
        _stop(server, thread)
        app.extensions["civicflow.engine"].dispose()


@pytest.fixture
def live_server(tmp_path, demo_database) -> str:
    """The real app on waitress at http://127.0.0.1:<free port>, with the demo loaded; yields its base URL."""
    with _serving(_settings(tmp_path), demo_database) as (url, _app):
        yield url


@dataclass
class Mailbox:
    """What the live server's mail sender delivered to the loopback SMTP server, and a way to run the sender now."""

    server: SmtpServer
    deliver_now: Callable[[], outbox.Delivery]

    def to(self, address: str, count: int = 1, timeout: float = MAIL_TIMEOUT_SECONDS) -> list[EmailMessage]:
        """Wait until `count` messages arrived for the address (the sender runs in its own thread); return them."""
        deadline = time.monotonic() + timeout
        while len(self.server.to(address)) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        arrived = self.server.to(address)
        subjects = [message["Subject"] for message in self.server.messages]
        assert len(arrived) >= count, (
            f"{len(arrived)} message(s) arrived for {address} within {timeout:g} s, "
            f"expected {count}; everything received: {subjects}"
        )
        return arrived

    @property
    def messages(self) -> list[EmailMessage]:
        """Every message received so far, for anyone."""
        return list(self.server.messages)


@pytest.fixture
def mailing_live_server(tmp_path, smtp_server, demo_database) -> tuple[str, Mailbox]:
    """The live server with its mail going to `smtp_server` (tests/smtp.py), the app's own sender running."""
    from web.mailer import start_mail_sender

    settings = dataclasses.replace(
        _settings(tmp_path), smtp_host=smtp_server.host, smtp_port=smtp_server.port, mail_from="civicflow@wspmn.example"
    )
    with _serving(settings, demo_database) as (url, app):
        factory = app.extensions["civicflow.sessions"]

        def sessions():
            return factory(info={"settings": settings})

        sender = start_mail_sender(sessions, settings, every_seconds=MAIL_EVERY_SECONDS)
        try:
            yield url, Mailbox(smtp_server, lambda: outbox.deliver_due(sessions, settings))
        finally:
            # Stopped (and its running pass finished) before the database and the SMTP server go away.
            sender.shutdown(wait=True)


@dataclass
class Web:
    """Pages of the live server in fresh browser contexts, logged in as demo users, and their screenshots."""

    browser: Browser
    url: str
    mail: Mailbox | None = None
    contexts: list[BrowserContext] = field(default_factory=list)
    problems: dict[int, list[str]] = field(default_factory=dict)

    def new_page(self, viewport: dict = DESKTOP) -> Page:
        """A page in a new context (its own cookies), relative URLs on the live server."""
        context = self.browser.new_context(base_url=self.url, viewport=viewport)
        context.set_default_timeout(TIMEOUT_MS)
        self.contexts.append(context)
        page = context.new_page()
        problems = self.problems.setdefault(id(page), [])
        # Script errors and CSP refusals reach the console; a test can assert a page had none.
        page.on(
            "console",
            lambda message: (
                message.type == "error" and problems.append(f"{message.text} at {message.location.get('url')}")
            ),
        )
        page.on("pageerror", lambda error: problems.append(str(error)))
        page.on(
            "response",
            lambda response: (
                response.status >= 400
                and problems.append(f"{response.status} {response.request.method} {response.url}")
            ),
        )
        return page

    def console_errors(self, page: Page) -> list[str]:
        """The console errors, uncaught script errors and failed requests the page has had so far."""
        # Chromium asks for /favicon.ico on its own, whatever the page links; the app has none (reported).
        return [problem for problem in self.problems[id(page)] if "/favicon.ico" not in problem]

    def log_in(self, page: Page, username: str) -> None:
        """Log in through the login form and check the welcome message."""
        page.goto("/login")
        page.get_by_label("Username").fill(username)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        expect(page.locator(".flash.success")).to_contain_text("Welcome,")
        expect(page.get_by_role("button", name="Log out")).to_be_visible()

    def log_out(self, page: Page) -> None:
        """Log out with the header's button and check the page says so."""
        page.get_by_role("button", name="Log out").click()
        expect(page.locator(".flash")).to_have_text("You are logged out.")
        expect(page.get_by_role("heading", name="Log in")).to_be_visible()

    def open_inbox(self, page: Page, view: str) -> None:
        """Open the inbox from the main navigation, then its "Assigned to me" or "Available to me" view."""
        page.get_by_role("navigation", name="Main").get_by_role("link", name=re.compile("^Inbox")).click()
        page.get_by_role("navigation", name="Inbox views").get_by_role("link", name=re.compile(f"^{view}")).click()
        expect(page.get_by_role("navigation", name="Inbox views").locator("[aria-current=page]")).to_contain_text(view)

    def as_user(self, username: str, viewport: dict = DESKTOP) -> Page:
        """A page of a new context, logged in as the demo user."""
        page = self.new_page(viewport)
        self.log_in(page, username)
        return page

    def file_account_request(
        self,
        page: Page,
        *,
        name: str,
        department: str,
        purpose: str,
        audience: str,
        managers: str,
        platform: str = "Facebook",
        investigative: bool = False,
    ) -> None:
        """Fill and submit the new account request's start form from the "New request" page, as a user would."""
        page.get_by_role("navigation", name="Main").get_by_role("link", name="New request").click()
        page.get_by_role("link", name="New social media account request").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("New social media account request")
        page.get_by_label("Platform").select_option(label=platform)
        page.get_by_label("Proposed account name or address").fill(name)
        page.get_by_label("Owning department").select_option(label=department)
        page.get_by_label("Purpose of the account").fill(purpose)
        page.get_by_label("Intended audience").fill(audience)
        chosen = [username.strip() for username in managers.split(",")]  # chosen by name; the values are usernames
        page.get_by_label("Proposed social media managers", exact=True).select_option(value=chosen)
        if investigative:
            page.get_by_label("Police investigative profile").check()
        page.get_by_role("button", name="Submit request").click()

    def overflow(self, page: Page) -> int:
        """How many pixels the page is wider than the window: a phone user would have to scroll sideways."""
        return page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")

    def wider_than_window(self, page: Page) -> list[str]:
        """The elements that stick out to the right of the window (tag, class, width, text): why a page overflows."""
        return page.evaluate("""() => {
            const limit = document.documentElement.clientWidth;
            return [...document.querySelectorAll('body *')]
                .filter(e => e.getBoundingClientRect().right > limit + 0.5)
                .slice(0, 8)
                .map(e => `${e.tagName.toLowerCase()}.${e.className} `
                          + `right=${Math.round(e.getBoundingClientRect().right)} `
                          + `"${(e.textContent || '').trim().slice(0, 60)}"`);
        }""")

    def screenshot(self, page: Page, name: str) -> Path:
        """Save the whole page as test-artifacts/screenshots/<name>.png (gitignored)."""
        path = self.screenshot_path(name)
        page.screenshot(path=path, full_page=True)
        return path

    def screenshot_path(self, name: str) -> Path:
        """Where the screenshot called <name> goes (for a screenshot of one element)."""
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        return SCREENSHOTS / f"{name}.png"

    def close(self) -> None:
        """Close every context this test opened, before the server stops."""
        for context in self.contexts:
            context.close()


@pytest.fixture
def web(chromium, live_server) -> Web:
    """Browser pages on this test's live server; contexts close before the server does."""
    pages = Web(chromium, live_server)
    yield pages
    pages.close()


@pytest.fixture
def mail_web(chromium, mailing_live_server) -> Web:
    """Browser pages on a live server that sends its mail; `mail_web.mail` reads what arrived."""
    url, mailbox = mailing_live_server
    pages = Web(chromium, url, mail=mailbox)
    yield pages
    pages.close()
