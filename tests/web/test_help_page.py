"""The help page: what each procedure is for and who acts, the glossary, and who holds each role today."""

from __future__ import annotations

from tests.web.pages import text_of


def test_the_help_page_explains_the_procedures_the_words_and_whom_to_ask(browser_as, city, make_user):
    make_user("casey", department="administration", roles=["city_administrator"], name="Casey Administrator")
    page = browser_as("requester")
    response = page.get("/help")
    assert response.status_code == 200
    shown = text_of(response)
    for words in (
        "New social media account request",
        "Remove content (with a screenshot)",
        "Who acts: The requester asks; the head of the owning department approves",
        "Deadline in business days",
        "Incident",
        "Classification",
        "Communications Manager Comms",
        "City Attorney Attorney",
        "City Administrator Casey Administrator",
        "Records Officer Records",
        "Department Head, Parks and Recreation Parks_Head",
    ):
        assert words in shown, words


def test_every_staff_page_links_the_help_page_and_it_asks_for_a_login(browser_as, client, city):
    for path in ("/inbox", "/instances", "/registry", "/requests/new"):
        assert '<a href="/help"' in browser_as("requester").get(path).get_data(as_text=True), path
    assert client.get("/help").status_code in (302, 401)
