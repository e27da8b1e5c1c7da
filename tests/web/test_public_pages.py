"""The public pages, through the real app with CSRF on and no login: the notice and the forms, filing an appeal or
a dispute and following it by its tracking code, the refusals (token, honeypot, sizes, bad fields, rate limit),
what the public types always shown escaped, what staff see of a web filing, and the administrators' notice page."""

from __future__ import annotations

import dataclasses
import html
import re
from contextlib import contextmanager
from html.parser import HTMLParser

import pytest
from markupsafe import escape
from sqlalchemy import func, select

from engine.db.models import AuditEvent, OutboxMail, ProcessInstance, PublicNotice, PublicRequest
from engine.procedures.content_removal import CATEGORIES
from engine.requests import public
from tests.web.pages import csrf_token, error_next_to, post_form, text_of
from tests.web.test_procedure_pages import complete, letters, open_task
from web.public import PUBLIC_MAX_BYTES

APPELLANT, DISPUTANT = "jo.public@example.net", "sam.citizen@example.net"
# Markup a member of the public may type: a script, an attribute break-out, a template expression.
SCRIPT = "<script>alert(1)</script>"
BREAKOUT = '"><img src=x onerror=alert(1)>'
TEMPLATE = "{{7*7}}"
# A valid address that still needs escaping (an apostrophe and an ampersand) and holds a template expression.
MARKED_EMAIL = "o'neil&{{7*7}}@example.net"
ADVICE = "PRIVILEGED-5820: the spam category survives review, but narrow its wording."
RESPONSE = "RESPONSE-3317: the City keeps the removal categories as they are written."
INTERNAL = "INTERNAL-9046: restored after the moderator checked the thread."
AMENDMENT = "AMENDMENT-1288: narrow the spam clause; to the City Council in January."
BACK_TO_PUBLIC = """<a href="/public/">Back to the City's social media page for the public</a>"""
TRACKING_CODE = re.compile(r"[0-9A-HJKMNP-TV-Z]{4}(?:-[0-9A-HJKMNP-TV-Z]{4}){4}")
PUBLIC_PAGES = {
    "/public/": "The City's social media: your rights",
    "/public/notice": "Public notice: the City of West St. Paul on social media",
    "/public/appeal": "Appeal the removal of your comment",
    "/public/dispute": "Dispute the City's Social Media Policy",
    "/public/requests": "Follow your appeal or dispute",
}
REQUIRED = {
    "appeal": [
        "Your name",
        "Your e-mail address",
        "The City account your comment was on",
        "Your comment, as you remember it",
        "Why your comment does not fall into any of the removal categories",
    ],
    "dispute": [
        "Your name",
        "Your e-mail address",
        "The portion of the policy you dispute",
        "Why you believe that portion is not lawful",
    ],
}
# What the request page's history says about a filing; none of it is for the public.
HISTORY_WORDS = (
    "Submitted the request",
    "Member of the public",
    "E-mail queued for sending",
    "civicflow (automatic)",
    "Review the appeal and write the response",
    "Restore or repost the content",
    "Restored the comment",
)


# ---- helpers -----------------------------------------------------------------------------------------


def marked(name: str) -> str:
    """A field's value full of markup, named so that each field's text can be found on a page."""
    return f"{name} says {SCRIPT} {BREAKOUT} {TEMPLATE}"


def appeal_form(city, **changes) -> dict:
    """An appeal as a member of the public fills in the form."""
    return {
        "appellant_name": "Jo Public",
        "appellant_email": APPELLANT,
        "account": str(city.facebook),
        "comment_text": "When does the library open on Sundays?",
        "explanation": "My comment asked about City services.",
        **changes,
    }


def dispute_form(**changes) -> dict:
    """A dispute as a member of the public fills in the form."""
    return {
        "disputant_name": "Sam Citizen",
        "disputant_email": DISPUTANT,
        "policy_section": "Rules of Use, the removal categories",
        "basis": "They restrict speech protected in a public forum.",
        **changes,
    }


def form_of(kind: str, city, **changes) -> dict:
    """The filled-in form of a kind of filing."""
    return appeal_form(city, **changes) if kind == "appeal" else dispute_form(**changes)


def marked_form(kind: str, city) -> dict:
    """A filing with markup in every field that takes free text (the address valid, but needing escapes)."""
    if kind == "appeal":
        return appeal_form(
            city,
            appellant_name=marked("appellant_name"),
            appellant_email=MARKED_EMAIL,
            comment_text=marked("comment_text"),
            explanation=marked("explanation"),
        )
    return dispute_form(
        disputant_name=marked("disputant_name"),
        disputant_email=MARKED_EMAIL,
        policy_section=marked("policy_section"),
        basis=marked("basis"),
    )


def send(client, kind: str, data: dict, **kw):
    """Open the form and send it with its CSRF token, as a browser does."""
    token = csrf_token(client.get(f"/public/{kind}", **kw))
    return client.post(f"/public/{kind}", data={**data, "csrf_token": token}, **kw)


def file_through_form(client, kind: str, data: dict) -> str:
    """File through the form; the tracking code the confirmation page shows."""
    response = send(client, kind, data)
    assert response.status_code == 303, text_of(response)[-800:]
    assert response.headers["Location"] == "/public/received"
    return code_on(client.get("/public/received"))


def code_on(received) -> str:
    """The tracking code on the confirmation page."""
    match = re.search(r'<p class="code"><strong>([^<]+)</strong></p>', received.get_data(as_text=True))
    assert match, text_of(received)[-800:]
    return match.group(1)


def request_id(sessions, code: str) -> int:
    """The request a tracking code opens."""
    with sessions() as s:
        return s.scalar(
            select(PublicRequest.instance_id).where(PublicRequest.code_hash == public.code_hash(public.normalise(code)))
        )


def current_step(response) -> str:
    """The step of the status page marked as where the request stands."""
    steps = re.findall(
        r'<li class="(?:done|todo)" aria-current="step">\s*<strong>([^<]+)</strong>', response.get_data(as_text=True)
    )
    assert len(steps) == 1, steps
    return steps[0]


def stored(sessions) -> tuple[int, ...]:
    """Requests, public filings, queued letters and audit events: what a refused filing must not leave behind."""
    with sessions() as s:
        return tuple(
            s.scalar(select(func.count()).select_from(model))
            for model in (ProcessInstance, PublicRequest, OutboxMail, AuditEvent)
        )


def summary_of(response) -> list[str]:
    """The error summary's lines, as read."""
    match = re.search(r'<div class="error-summary"[^>]*>(.*?)</div>', response.get_data(as_text=True), flags=re.S)
    assert match, "no error summary on the page"
    return [
        html.unescape(re.sub(r"<[^>]+>", "", item)).strip()
        for item in re.findall(r"<li>(.*?)</li>", match.group(1), flags=re.S)
    ]


def assert_escaped(response, values) -> None:
    """The page holds no markup the public typed, and shows each value as text (its escaped form)."""
    body = response.get_data(as_text=True)
    assert SCRIPT not in body and BREAKOUT not in body and "<img src=x" not in body
    for value in values:
        assert str(escape(value)) in body, value
        assert value == str(escape(value)) or value not in body, value


def inbox_row(page, title: str) -> str:
    """The text of the inbox row of a request, by its title as typed (the available tasks)."""
    body = page.get("/inbox?view=available").get_data(as_text=True)
    rows = [row for row in re.findall(r"<tr>.*?</tr>", body, flags=re.S) if str(escape(title)) in row]
    assert len(rows) == 1, text_of(page.get("/inbox?view=available"))[-800:]
    return rows[0]


def text_of_html(fragment: str) -> str:
    """The visible text of a piece of a page."""
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", fragment))).strip()


def flashes(response) -> list[str]:
    """The flash messages on a page."""
    return [
        html.unescape(m).strip()
        for m in re.findall(r'<p class="flash [a-z]+">(.*?)</p>', response.get_data(as_text=True), flags=re.S)
    ]


@pytest.fixture
def files_nothing(sessions, unchanged):
    """`with files_nothing(): ...` fails if the block left a request, a filing, a letter or an audit event."""

    @contextmanager
    def check():
        before = stored(sessions)
        with unchanged():
            yield
        assert stored(sessions) == before

    return check


class FormControls(HTMLParser):
    """The controls of a page's POST form, the labels by the id they name, and the wrappers of each control."""

    def __init__(self):
        super().__init__()
        self.controls: list[dict] = []
        self.labels: dict[str, str] = {}
        self.legends: list[str] = []
        self._open: list[dict] = []
        self._label_for: str | None = None
        self._text: list[str] = []
        self._in_form = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form" and attrs.get("method") == "post":
            self._in_form = True
        if not self._in_form:
            return
        if tag in ("div", "fieldset"):
            self._open.append(attrs)
        elif tag in ("input", "textarea", "select"):
            self.controls.append({"tag": tag, **attrs, "wrappers": [dict(w) for w in self._open]})
        elif tag in ("label", "legend"):
            self._label_for, self._text = attrs.get("for", tag), []

    def handle_endtag(self, tag):
        if tag == "form":
            self._in_form = False
        elif tag in ("div", "fieldset") and self._in_form and self._open:
            self._open.pop()
        elif tag == "label" and self._label_for:
            self.labels[self._label_for] = " ".join("".join(self._text).split())
            self._label_for = None
        elif tag == "legend" and self._label_for:
            self.legends.append(" ".join("".join(self._text).split()))
            self._label_for = None

    def handle_data(self, data):
        if self._label_for:
            self._text.append(data)


def controls_of(response) -> FormControls:
    """The parsed POST form of a page."""
    parser = FormControls()
    parser.feed(response.get_data(as_text=True))
    return parser


# ---- the pages -------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", PUBLIC_PAGES)
def test_every_public_page_answers_without_a_login(client, city, path):
    response = client.get(path)
    assert response.status_code == 200
    body = response.get_data(as_text=True)
    assert [html.unescape(h) for h in re.findall(r"<h1>([^<]+)</h1>", body)] == [PUBLIC_PAGES[path]]
    assert "Log out" not in body and 'href="/inbox"' not in body  # no staff navigation
    for link in ("/public/notice", "/public/appeal", "/public/dispute", "/public/requests"):
        assert f'href="{link}"' in body


def test_the_appeal_page_lists_the_nine_categories_in_plain_words_with_the_policys_words(client, city):
    response = client.get("/public/appeal")
    listed = [
        (html.unescape(plain), html.unescape(policy))
        for plain, policy in re.findall(
            r"<li><strong>([^<]+)</strong><br><small>The policy's words: “([^”]+)”</small></li>",
            response.get_data(as_text=True),
        )
    ]
    assert [policy for _, policy in listed] == [label for _, label in CATEGORIES]  # all nine, in the policy's order
    assert len(listed) == 9
    assert ("Advertising, sales pitches or spam.", "Commercial promotions or spam") in listed
    assert (
        "Something that is not about City government or City services.",
        "Material unrelated to City government or services",
    ) in listed
    assert all(plain != policy for plain, policy in listed)
    shown = text_of(response)
    assert "The City's public notice" in shown
    assert (
        "By accessing, using or posting to a City social media page, you agree to these terms: Comments, posts "
        "and media from the public are not edited"
    ) in shown


@pytest.mark.parametrize(
    ("kind", "labels"),
    [
        (
            "appeal",
            [
                "Your name",
                "Your e-mail address",
                "Facebook: City of West St. Paul",
                "X (Twitter): West St. Paul Police",
                "Your comment, as you remember it",
                "Why your comment does not fall into any of the removal categories",
                "Removal number, if the City gave you one",
                "Leave this field empty",
            ],
        ),
        (
            "dispute",
            [
                "Your name",
                "Your e-mail address",
                "The portion of the policy you dispute",
                "Why you believe that portion is not lawful",
                "Leave this field empty",
            ],
        ),
    ],
)
def test_the_public_forms_label_every_field_carry_a_csrf_token_and_hide_the_honeypot(client, city, kind, labels):
    response = client.get(f"/public/{kind}")
    form = controls_of(response)
    visible = [c for c in form.controls if c.get("type") != "hidden"]
    assert [form.labels.get(c["id"]) for c in visible] == labels  # every field has its label, in order
    assert [c["name"] for c in form.controls if c.get("type") == "hidden"] == ["csrf_token"]
    assert csrf_token(response)
    if kind == "appeal":
        assert form.legends == ["The City account your comment was on (required)"]
        assert "Neighborhood watcher" not in response.get_data(as_text=True)  # no investigative profile offered
    [honeypot] = [c for c in form.controls if c["name"] == "website"]
    assert honeypot["tabindex"] == "-1" and honeypot["autocomplete"] == "off"
    assert {"class": "hp", "aria-hidden": "true"} in honeypot["wrappers"]
    assert all(w.get("aria-hidden") != "true" for c in visible if c["name"] != "website" for w in c["wrappers"])


# ---- filing ----------------------------------------------------------------------------------------


def test_an_appeal_filed_through_the_form_shows_its_code_and_what_was_sent_and_is_received(client, city, sessions):
    response = send(client, "appeal", appeal_form(city))
    assert response.status_code == 303
    assert response.headers["Location"] == "/public/received"
    received = client.get("/public/received")
    assert received.status_code == 200
    code = code_on(received)
    assert TRACKING_CODE.fullmatch(code)
    body = received.get_data(as_text=True)
    assert f'<a href="/public/requests/{code}">the page where you can follow' in body
    shown = text_of(received)
    assert "We received your appeal" in shown
    assert f"A receipt with the code and a copy of what you sent is on its way to {APPELLANT}." in shown
    assert (
        "What you sent Your name Jo Public Your e-mail address jo.public@example.net "
        "The City account your comment was on Facebook: City of West St. Paul "
        "Your comment, as you remember it When does the library open on Sundays? "
        "Why your comment does not fall into any of the removal categories My comment asked about City "
        "services."
    ) in shown

    status = client.get(f"/public/requests/{code}")
    assert status.status_code == 200
    assert current_step(status) == "Received"
    assert f"Tracking code {code}" in text_of(status)
    assert "The City's written response will appear here once it is sent" in text_of(status)
    [(to, subject, receipt)] = letters(sessions, request_id(sessions, code))
    assert (to, subject) == ([APPELLANT], "Receipt: your appeal of a removed comment")
    assert code in receipt and f"/public/requests/{code}" in receipt


def test_a_dispute_filed_through_the_form_is_acknowledged_at_once(client, city, sessions):
    code = file_through_form(client, "dispute", dispute_form())
    status = client.get(f"/public/requests/{code}")
    assert current_step(status) == "Acknowledged"
    assert "Your dispute of the City's Social Media Policy" in text_of(status)
    sent = letters(sessions, request_id(sessions, code))
    # One letter: the acknowledgement the policy requires carries the tracking code and its link.
    assert [(to, subject) for to, subject, _ in sent] == [
        ([DISPUTANT], "We received your dispute of the Social Media Policy"),
    ]
    assert code in sent[0][2] and f"/public/requests/{code}" in sent[0][2]


@pytest.mark.parametrize("kind", ["appeal", "dispute"])
def test_a_filing_without_the_csrf_token_is_refused_and_files_nothing(client, city, files_nothing, kind):
    client.get(f"/public/{kind}")  # the browser has a session, but the form's token is missing
    data = form_of(kind, city)
    with files_nothing():
        response = client.post(f"/public/{kind}", data=data)
    assert response.status_code == 400
    assert summary_of(response) == [
        "The page was open a long time, so for your security nothing was sent yet. "
        "What you wrote is below: check it and send it again."
    ]
    name = "appellant_name" if kind == "appeal" else "disputant_name"
    assert re.search(rf'name="{name}"[^>]* value="{data[name]}"', response.get_data(as_text=True))  # kept as written
    again = client.post(f"/public/{kind}", data={**data, "csrf_token": csrf_token(response)})  # with a fresh token
    assert again.status_code == 303


def test_a_filled_honeypot_is_refused_saying_to_leave_that_field_empty(client, city, files_nothing):
    with files_nothing():
        response = send(client, "appeal", appeal_form(city, website="https://cheap-watches.example"))
    assert response.status_code == 400
    assert summary_of(response) == [
        'The field "Leave this field empty" must be left empty; nothing was sent. Clear it and send the form again.'
    ]
    assert 'value="Jo Public"' in response.get_data(as_text=True)  # the rest comes back to send again


@pytest.mark.parametrize("kind", ["appeal", "dispute"])
def test_an_empty_form_names_every_required_field_in_the_summary_and_next_to_it(client, city, files_nothing, kind):
    with files_nothing():
        response = send(client, kind, {})
    assert response.status_code == 400
    assert "Please correct the fields marked below; nothing was sent." in text_of(response)
    assert summary_of(response) == [f"{label}: This field is required." for label in REQUIRED[kind]]
    for name in form_of(kind, city):
        assert error_next_to(response, name) == "This field is required."


@pytest.mark.parametrize(
    ("case", "kind", "changes", "field", "label", "message"),
    [
        (
            "an explanation of 10,001 characters",
            "appeal",
            {"explanation": "x" * 10001},
            "explanation",
            "Why your comment does not fall into any of the removal categories",
            "Field cannot be longer than 10000 characters.",
        ),
        (
            "a basis of 10,001 characters",
            "dispute",
            {"basis": "x" * 10001},
            "basis",
            "Why you believe that portion is not lawful",
            "Field cannot be longer than 10000 characters.",
        ),
        (
            "a bad e-mail address",
            "appeal",
            {"appellant_email": "jo.public@"},
            "appellant_email",
            "Your e-mail address",
            "Must be an e-mail address such as name@example.org.",
        ),
        (
            "a bad e-mail address",
            "dispute",
            {"disputant_email": "sam at example"},
            "disputant_email",
            "Your e-mail address",
            "Must be an e-mail address such as name@example.org.",
        ),
        (
            "an investigative profile",
            "appeal",
            {"account": "profile"},
            "account",
            "The City account your comment was on",
            'PROFILE is not one of the choices for "The City account your comment was on".',
        ),
        (
            "an account not in the registry",
            "appeal",
            {"account": "999"},
            "account",
            "The City account your comment was on",
            '999 is not one of the choices for "The City account your comment was on".',
        ),
        (
            "a removal number that is not a removal",
            "appeal",
            {"removal_id": "4242"},
            "removal_id",
            "Removal number, if the City gave you one",
            "There is no removal 4242 on Facebook: City of West St. Paul. Leave the number empty if unsure.",
        ),
    ],
)
def test_a_refused_filing_names_the_field_next_to_it_and_files_nothing(
    client, city, files_nothing, case, kind, changes, field, label, message
):
    changes = {k: str(city.profile) if v == "profile" else v for k, v in changes.items()}
    message = message.replace("PROFILE", str(city.profile))
    with files_nothing():
        response = send(client, kind, form_of(kind, city, **changes))
    assert response.status_code == 400, case
    assert summary_of(response) == [f"{label}: {message}"], case
    assert error_next_to(response, field) == message, case
    assert "Neighborhood watcher" not in response.get_data(as_text=True)  # a profile's name never reaches the public


def test_a_body_over_the_limit_gets_the_too_large_page_and_files_nothing(client, city, files_nothing):
    with files_nothing():
        response = send(client, "appeal", appeal_form(city, explanation="x" * (PUBLIC_MAX_BYTES + 1)))
    assert response.status_code == 413
    assert "<h1>Too large</h1>" in response.get_data(as_text=True)
    assert "nothing was sent. Each text may be at most 10,000 characters" in response.get_data(as_text=True)
    assert BACK_TO_PUBLIC in response.get_data(as_text=True)
    assert "x" * 1000 not in response.get_data(as_text=True)


# ---- markup stays text -------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["appeal", "dispute"])
def test_markup_in_every_field_comes_back_escaped_when_the_form_is_refused(client, city, files_nothing, kind):
    names = [*form_of(kind, city), *(["removal_id"] if kind == "appeal" else [])]
    every = {name: marked(name) for name in names}
    with files_nothing():
        refused = send(client, kind, every)  # the address (and, for an appeal, the numbers) cannot be right
    assert refused.status_code == 400
    email = "appellant_email" if kind == "appeal" else "disputant_email"
    typed = [v for name, v in every.items() if name != "account"]  # a choice is not typed back
    assert_escaped(refused, typed)
    if kind == "appeal":
        assert error_next_to(refused, "removal_id") == "Must be a number such as 12."
        # The form's own checks passed on the numbers: now the engine refuses the address, and says so beside it.
        with files_nothing():
            refused = send(client, kind, {**every, "account": str(city.facebook), "removal_id": ""})
        assert refused.status_code == 400
        assert_escaped(refused, [v for name, v in every.items() if name not in ("account", "removal_id")])
    assert error_next_to(refused, email) == "Must be an e-mail address such as name@example.org."


@pytest.mark.parametrize(
    ("kind", "reader", "form_key"),
    [("appeal", "comms", "appeal_review"), ("dispute", "attorney", "attorney_consultation")],
)
def test_markup_in_a_filing_is_shown_as_text_to_the_public_and_to_staff(
    client, browser_as, city, sessions, kind, reader, form_key
):
    filing = marked_form(kind, city)
    typed = [filing[name] for name in filing if name != "account"]
    response = send(client, kind, filing)
    assert response.status_code == 303
    received = client.get("/public/received")
    assert_escaped(received, typed)
    code = code_on(received)
    instance_id = request_id(sessions, code)

    staff = browser_as(reader)
    name = filing[f"{'appellant' if kind == 'appeal' else 'disputant'}_name"]
    assert_escaped(staff.get("/inbox?view=available"), [name])
    assert f"{name} (member of the public)" in text_of(staff.get("/inbox?view=available"))
    task = open_task(sessions, instance_id, form_key)
    for path in (f"/tasks/{task}", f"/instances/{instance_id}"):
        page = staff.get(path)
        assert page.status_code == 200, path
        assert_escaped(page, typed)

    comms = browser_as("comms")
    if kind == "appeal":
        complete(comms, task, {"decision": "uphold", "response_text": marked("response_text")})
    else:
        complete(staff, task, {"advice": ADVICE, "recommendation": "no_change"})
        response_task = open_task(sessions, instance_id, "dispute_response")
        complete(comms, response_task, {"response_text": marked("response_text")})
    status = client.get(f"/public/requests/{code}")
    assert current_step(status) == "Responded"
    assert_escaped(status, [marked("response_text"), name])


def test_markup_in_the_public_notice_is_shown_as_text_on_the_notice_and_beside_the_forms(
    client, browser_as, city, notice_admin
):
    admin = browser_as("nadia.admin")
    text = f"Notice says {SCRIPT}\n\n- item says {BREAKOUT}\n- and {TEMPLATE}"
    saved = post_form(admin, "/admin/public-notice", {"body": text})
    assert saved.status_code == 302
    for path in ("/public/notice", "/public/appeal", "/public/dispute"):
        page = client.get(path)
        assert_escaped(page, [f"Notice says {SCRIPT}", f"item says {BREAKOUT}", f"and {TEMPLATE}"])
        assert f"<li>{escape('item says ' + BREAKOUT)}</li><li>and {TEMPLATE}</li>" in page.get_data(as_text=True)


# ---- what staff see, what the public sees of it --------------------------------------------------------


def test_staff_see_a_web_filing_marked_and_its_response_reaches_the_status_page_without_anything_internal(
    client, browser_as, city, sessions
):
    code = file_through_form(client, "appeal", appeal_form(city))
    instance_id = request_id(sessions, code)
    comms = browser_as("comms")
    row = text_of_html(inbox_row(comms, "Appeal by Jo Public about Facebook: City of West St. Paul"))
    assert "Jo Public (member of the public) Received through the web" in row
    review = open_task(sessions, instance_id, "appeal_review")
    for path in (f"/tasks/{review}", f"/instances/{instance_id}"):
        shown = text_of(comms.get(path))
        assert "asked by Jo Public (member of the public) on" in shown and "· Received through the web" in shown, path
        assert "Received by The public web form" in shown, path

    response_text = "On review, your comment asked about City services; it will be restored."
    done = complete(comms, review, {"decision": "reinstate", "response_text": response_text})
    assert "It now waits for: Restore or repost the content (Social Media Manager)." in done
    moderator = browser_as("moderator")
    complete(
        moderator,
        open_task(sessions, instance_id, "restore_content"),
        {"restored": "y", "restored_url": "https://facebook.com/cityofwsp/posts/1?c=2", "comment": INTERNAL},
    )
    history = text_of(comms.get(f"/instances/{instance_id}"))
    assert INTERNAL in history and "Reinstated the comment · Review the appeal" in history  # staff see it all

    status = client.get(f"/public/requests/{code}")
    assert current_step(status) == "Responded"
    shown = text_of(status)
    assert (
        "The City's written response Dear Jo Public, Thank you for your appeal of" in shown
        and "The City has decided to reinstate your comment. " + response_text in shown
    )
    assert INTERNAL not in shown and "https://facebook.com/cityofwsp/posts/1?c=2" not in shown
    assert "Comms" not in shown and not re.search(r"\bcomms\b", shown, flags=re.I)
    assert "Moderator" not in shown and not re.search(r"\bmoderator\b", shown, flags=re.I)
    for words in HISTORY_WORDS:
        assert words not in shown, words


def test_the_attorneys_advice_never_reaches_the_public_while_the_response_does(client, browser_as, city, sessions):
    code = file_through_form(client, "dispute", dispute_form())
    instance_id = request_id(sessions, code)
    attorney = browser_as("attorney")
    assert "Sam Citizen (member of the public)" in text_of_html(
        inbox_row(attorney, 'Dispute by Sam Citizen of "Rules of Use, the removal categories"')
    )
    complete(
        attorney,
        open_task(sessions, instance_id, "attorney_consultation"),
        {"advice": ADVICE, "recommendation": "amend"},
    )
    assert ADVICE in text_of(browser_as("comms").get(f"/instances/{instance_id}"))  # the manager reads it
    waiting = client.get(f"/public/requests/{code}")
    assert current_step(waiting) == "Acknowledged" and ADVICE not in waiting.get_data(as_text=True)

    comms = browser_as("comms")
    complete(comms, open_task(sessions, instance_id, "dispute_response"), {"response_text": RESPONSE})
    complete(comms, open_task(sessions, instance_id, "policy_amendment"), {"amendment_summary": AMENDMENT})
    status = client.get(f"/public/requests/{code}")
    assert current_step(status) == "Responded"
    body = status.get_data(as_text=True)
    assert RESPONSE in text_of(status)
    assert "PRIVILEGED-5820" not in body and "Amend the policy" not in body and "AMENDMENT-1288" not in body
    api = client.get(f"/api/v1/public/requests/{code.lower().replace('-', '')}")
    assert api.status_code == 200
    facts = api.get_json()
    assert (facts["kind"], facts["status"]) == ("dispute", "responded")
    assert RESPONSE in facts["response"]
    assert "PRIVILEGED-5820" not in api.get_data(as_text=True) and "AMENDMENT-1288" not in api.get_data(as_text=True)


# ---- looking a request up ----------------------------------------------------------------------------


def test_a_code_typed_in_lowercase_without_dashes_opens_its_status_page(client, city):
    code = file_through_form(client, "appeal", appeal_form(city))
    response = client.get(f"/public/requests?code={code.lower().replace('-', '')}")
    assert response.status_code == 302
    assert response.headers["Location"] == f"/public/requests/{code}"
    assert current_step(client.get(response.headers["Location"])) == "Received"


@pytest.mark.parametrize("typed", ["ABCD-1234", "K7QM-4XPA-9RTD-2WEH-5NBU", "<script>alert(1)</script>"])
def test_a_malformed_code_is_refused_next_to_the_field(client, city, typed):
    response = client.get("/public/requests", query_string={"code": typed})
    assert response.status_code == 400
    message = "A tracking code has 20 letters and digits, like K7QM-4XPA-9RTD-2WEH-5NBC."
    assert error_next_to(response, "code") == message
    assert_escaped(response, [typed])  # what was typed comes back, as text


def test_an_unknown_code_shows_the_lookup_again_with_the_code_and_the_error_next_to_it(client, city):
    file_through_form(client, "appeal", appeal_form(city))
    unknown = "K7QM-4XPA-9RTD-2WEH-5NBC"
    for path in (f"/public/requests?code={unknown}", f"/public/requests/{unknown}"):
        response = client.get(path)
        assert response.status_code == 404, path
        assert error_next_to(response, "code") == (
            "No request has this tracking code. Check it against your receipt and try again; "
            "capitals and dashes do not matter."
        )
        page = response.get_data(as_text=True)
        assert f'value="{unknown}"' in page  # the code as typed, to correct
        assert '<form method="get" action="/public/requests"' in page
        assert "Show my request" in text_of(response)


def test_a_code_corrected_on_the_not_found_page_opens_its_request(client, city):
    code = file_through_form(client, "appeal", appeal_form(city))
    wrong = code[:-1] + ("A" if code[-1] != "A" else "B")
    assert client.get("/public/requests", query_string={"code": wrong}).status_code == 404
    again = client.get("/public/requests", query_string={"code": code})
    assert again.status_code == 302
    assert again.headers["Location"] == f"/public/requests/{code}"


@pytest.fixture
def slower_city(settings):
    """The app with deadlines of its own: appeals answered in 7 business days; a dispute acknowledged in 2, the
    City Attorney consulted in 4 and the response written in 6."""
    from web import create_app

    deadlines = {**settings.deadlines, "appeal_response": 7, "dispute_acknowledgement": 2}
    deadlines |= {"attorney_consultation": 4, "dispute_response": 6}
    app = create_app({"TESTING": True}, settings=dataclasses.replace(settings, deadlines=deadlines))
    yield app
    app.extensions["civicflow.engine"].dispose()


def test_the_forms_and_the_status_page_say_how_long_the_city_takes_from_its_deadline_settings(slower_city, city):
    client = slower_city.test_client()
    appeal = text_of(client.get("/public/appeal"))
    assert "The City sends its written response to an appeal within 7 business days of receiving it." in appeal
    dispute = text_of(client.get("/public/dispute"))
    assert (
        "The City acknowledges a dispute within 2 business days and, after consulting the City Attorney, sends "
        "its written response within 10 business days of receiving it."
    ) in dispute
    code = file_through_form(client, "appeal", appeal_form(city))
    assert "within 7 business days of receiving it" in text_of(client.get("/public/received"))
    assert "within 7 business days of receiving it" in text_of(client.get(f"/public/requests/{code}"))


def test_the_shipped_deadlines_are_what_the_public_is_told(client, city):
    assert "within 10 business days of receiving it" in text_of(client.get("/public/appeal"))
    dispute = text_of(client.get("/public/dispute"))
    assert "within 1 business day and" in dispute and "within 30 business days of receiving it" in dispute


def test_the_dispute_form_shows_the_policy_text_in_force_in_a_section_that_opens_on_the_page(
    client, city, sessions, people
):
    with sessions() as session:
        public.change_notice(session, people.admin, "RULES-4410: comments must stay on topic.\n\n- No spam.")
        session.commit()
    page = client.get("/public/dispute").get_data(as_text=True)
    policy = re.search(r'<details class="card policy-text" id="policy-text">(.*?)</details>', page, flags=re.S)
    assert policy, "the dispute form has no policy text"
    shown = html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", policy.group(1))))
    assert "Read the policy text you may dispute" in shown
    assert "RULES-4410: comments must stay on topic." in shown
    assert "No spam." in shown
    assert all(words in shown for _, words in CATEGORIES)  # the removal categories, in the policy's words
    assert page.index('id="policy-text"') < page.index('id="dispute-form"')  # read before the form, on a phone too
    assert 'id="policy-text"' not in client.get("/public/appeal").get_data(as_text=True)


# ---- the rate limit --------------------------------------------------------------------------------


@pytest.fixture
def strict_app(settings):
    """The app with at most two filings a minute from one client."""
    from web import create_app

    app = create_app({"TESTING": True}, settings=dataclasses.replace(settings, public_submission_limit="2 per minute"))
    yield app
    app.extensions["civicflow.engine"].dispose()


def test_the_third_filing_in_a_minute_from_one_client_is_refused_while_another_client_files(
    strict_app, city, files_nothing
):
    first, other = strict_app.test_client(), strict_app.test_client()
    here, there = {"REMOTE_ADDR": "10.0.0.7"}, {"REMOTE_ADDR": "10.0.0.8"}
    for _ in range(2):
        assert send(first, "appeal", appeal_form(city), environ_base=here).status_code == 303
    with files_nothing():
        refused = send(first, "dispute", dispute_form(), environ_base=here)
    assert refused.status_code == 429
    shown = text_of(refused)
    assert "Too many attempts" in shown
    assert "Too many requests came from your connection in a short time" in shown and "nothing was saved" in shown
    accepted = send(other, "dispute", dispute_form(), environ_base=there)
    assert accepted.status_code == 303
    assert TRACKING_CODE.fullmatch(code_on(other.get("/public/received", environ_base=there)))


# ---- the administrators' notice page ------------------------------------------------------------------


@pytest.fixture
def notice_admin(make_user):
    """An administrator with a name no page shows otherwise."""
    return make_user("nadia.admin", department="administration", roles=["admin"], name="Nadia Okonkwo")


def notices(sessions) -> int:
    """The saved versions of the public notice."""
    with sessions() as s:
        return s.scalar(select(func.count()).select_from(PublicNotice))


def test_the_notice_page_is_for_administrators_only(client, browser_as, city, sessions):
    assert client.get("/admin/public-notice").status_code == 302
    assert client.get("/admin/public-notice").headers["Location"].startswith("/login")
    token = csrf_token(client.get("/login"))
    logged_out = client.post("/admin/public-notice", data={"body": "Taken over.", "csrf_token": token})
    assert logged_out.status_code == 302 and logged_out.headers["Location"].startswith("/login")
    comms = browser_as("comms")
    assert comms.get("/admin/public-notice").status_code == 403
    refused = post_form(comms, "/admin/public-notice", {"body": "Taken over."}, page_path="/inbox")
    assert refused.status_code == 403
    assert notices(sessions) == 0
    assert "Taken over." not in text_of(client.get("/public/notice"))


def test_an_administrator_changes_the_notice_and_the_public_pages_show_it_at_once(
    client, browser_as, city, notice_admin, sessions
):
    admin = browser_as("nadia.admin")
    page = admin.get("/admin/public-notice")
    assert page.status_code == 200
    assert "No one has changed it yet: the public pages show the City's default text." in text_of(page)
    text = (
        "The City's pages share news about City services.\n\nBy posting you agree:\n- Be civil.\n"
        "- Stay on the topic of the post.\n\nQuestions go to the City Clerk."
    )
    saved = post_form(admin, "/admin/public-notice", {"body": text})
    assert saved.status_code == 302 and saved.headers["Location"] == "/admin/public-notice"
    after = admin.get("/admin/public-notice")
    assert flashes(after) == ["The public notice is changed; the public pages show the new text now."]
    assert re.search(r"by Nadia Okonkwo \(in force\)", text_of(after))

    notice = client.get("/public/notice").get_data(as_text=True)
    prose = re.search(r'<div class="prose">(.*?)</div>', notice, flags=re.S).group(1)
    assert re.findall(r"<(p|ul|li)>([^<]*)", prose) == [
        ("p", "The City&#39;s pages share news about City services."),
        ("p", "By posting you agree:"),
        ("ul", ""),
        ("li", "Be civil."),
        ("li", "Stay on the topic of the post."),
        ("p", "Questions go to the City Clerk."),
    ]
    assert "uses social media to share information about City government" not in notice  # the default is gone
    assert "Stay on the topic of the post." in text_of(client.get("/public/appeal"))
    assert notices(sessions) == 1


@pytest.mark.parametrize(
    ("body", "message"), [("", "This field is required."), ("  \r\n  ", "Write the notice's text.")]
)
def test_an_empty_notice_is_refused_next_to_its_field(client, browser_as, city, notice_admin, sessions, body, message):
    response = post_form(browser_as("nadia.admin"), "/admin/public-notice", {"body": body})
    assert response.status_code == 400
    assert error_next_to(response, "body") == message
    assert summary_of(response) == [f"Text of the public notice: {message}"]
    assert notices(sessions) == 0
    assert "uses social media to share information about City government" in text_of(client.get("/public/notice"))


def test_saving_the_notice_without_the_csrf_token_is_refused(browser_as, city, notice_admin, sessions):
    admin = browser_as("nadia.admin")
    admin.get("/admin/public-notice")
    response = admin.post("/admin/public-notice", data={"body": "A notice from another site."})
    assert response.status_code == 400
    assert "security token was missing" in text_of(response)
    assert notices(sessions) == 0


def test_after_a_honeypot_refusal_the_form_comes_back_with_the_hidden_field_empty_and_can_be_sent(client, city):
    refused = send(client, "appeal", appeal_form(city, website="autofilled"))
    assert refused.status_code == 400
    [honeypot] = [c for c in controls_of(refused).controls if c["name"] == "website"]
    assert honeypot["value"] == ""  # the person can neither see nor reach it to clear it, as the message asks
    form = {
        c["name"]: c.get("value", "")
        for c in controls_of(refused).controls
        if c["tag"] == "input" and c.get("type") != "radio"
    }
    again = client.post("/public/appeal", data={**appeal_form(city), **form})
    assert again.status_code == 303, text_of(again)[-300:]


def test_a_text_within_the_pages_maxlength_sent_with_browser_line_breaks_is_accepted(client, city, sessions):
    lines = ["x" * 99] * 100  # 9,999 characters as the textarea's maxlength counts them (a line break is one)
    response = send(client, "appeal", appeal_form(city, explanation="\r\n".join(lines)))  # browsers send CRLF
    assert response.status_code == 303, error_next_to(response, "explanation")
    with sessions() as session:
        [instance] = session.scalars(select(ProcessInstance)).all()
    assert instance.data["explanation"] == "\n".join(lines)


def test_two_long_texts_in_a_non_latin_script_within_their_limits_are_accepted(client, city):
    response = send(client, "appeal", appeal_form(city, comment_text="漢" * 10000, explanation="😀" * 10000))
    assert response.status_code == 303, response.status_code
