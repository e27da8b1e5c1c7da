"""Single sign-on in Chromium: the real redirect flow through a real OpenID provider on loopback (tests/sso/), with
the provider's own sign-in and consent pages, and roles that follow the person's groups at each sign-in."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import Web, _serving, _settings
from tests.smtp import free_port
from tests.sso.oidc import LocalProvider, running_provider


@pytest.fixture
def sso_web(chromium, tmp_path, demo_database):
    """The demo on a live server with single sign-on through the local provider, and browser pages on it."""
    port = free_port()
    issuer = f"http://127.0.0.1:{port}"
    settings = _settings(tmp_path)
    # The provider's settings first (the app needs its issuer), then the provider, told the app's callback.
    settings = LocalProvider(issuer, tmp_path / "directory.json").settings_for(settings)
    with (
        _serving(settings, demo_database) as (url, _app),
        running_provider(tmp_path, f"{url}/login/sso/callback", port=port) as provider,
    ):
        pages = Web(chromium, url)
        pages.provider = provider
        yield pages
        pages.close()


def sign_in_with_the_directory(page: Page, sub: str) -> None:
    """From civicflow's login page through the provider's sign-in and consent pages, back to civicflow."""
    page.goto("/login")
    page.get_by_role("link", name="Sign in with City Directory").click()
    page.get_by_placeholder("Enter any login").fill(sub)
    page.get_by_placeholder("and password").fill("the directory's password")
    page.get_by_role("button", name="Sign-in").click()
    page.get_by_role("button", name="Continue").click()  # the provider's consent page
    expect(page.locator(".flash.success")).to_have_text("Welcome, Pat Quinn.")


def test_a_person_signs_in_through_the_directory_and_gets_the_roles_of_their_groups(sso_web):
    # A request from Parks waits for the Department Head of Parks.
    requester = sso_web.as_user("requester")
    sso_web.file_account_request(
        requester,
        name="Parks SSO Program",
        department="Parks and Recreation",
        purpose="Program announcements for Parks and Recreation.",
        audience="Residents.",
        managers="requester",
    )
    expect(requester.locator(".flash.success")).to_contain_text("It now waits for: Department Head approval")

    # Pat is in the directory's parks-heads group: signed in, they head Parks and the request waits for them.
    page = sso_web.new_page()
    page.goto("/login")
    sso_web.screenshot(page, "sso_login_desktop")
    sign_in_with_the_directory(page, "pat-0001")
    expect(page).to_have_url(re.compile(r"/inbox$"))
    waiting = page.get_by_role("table", name="Available to me: 1 task")
    expect(waiting.get_by_role("row").filter(has_text="Parks SSO Program")).to_contain_text("Department Head approval")
    expect(page.get_by_role("navigation", name="Main").get_by_role("link", name="Admin")).to_have_count(0)
    page.screenshot(path="/tmp/sso-inbox.png", full_page=True)
    sso_web.screenshot(page, "sso_inbox_desktop")
    sso_web.log_out(page)

    # IT moves Pat to the administrators: at the next sign-in the headship is gone and administration is theirs.
    sso_web.provider.set_groups("pat-0001", ["civicflow-admins"])
    page = sso_web.new_page()  # another day, a new browser session at the provider too
    sign_in_with_the_directory(page, "pat-0001")
    expect(page.get_by_role("table", name=re.compile("^Available to me"))).to_have_count(0)
    expect(page.locator("p.empty")).to_contain_text("Nothing is assigned to you")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Admin").click()
    row = page.get_by_role("row").filter(has_text="Pat Quinn")
    expect(row).to_contain_text("Administrator")
