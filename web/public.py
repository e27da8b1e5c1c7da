"""The public pages: no login. The City's public notice, the appeal and dispute forms, the confirmation with
its tracking code, and the status page a tracking code opens.

Abuse resistance: CSRF tokens on the forms (CSRFProtect), a honeypot field, size limits on every field and
on the whole request, rate limits per client (web/ratelimit.py), and text only: what the public types is
stored as text and always rendered escaped.
"""

from __future__ import annotations

import functools
import logging
import time

from flask import Blueprint, current_app, g, redirect, render_template, request, session, url_for
from flask_wtf.csrf import CSRFError

from engine import procedures
from engine.errors import Busy, Invalid, NotFound
from engine.procedures.content_removal import CATEGORIES, PLAIN_CATEGORIES
from engine.requests import public
from forms.public import HONEYPOT, lookup_form, public_form
from web.db import get_session, transactional
from web.errors import error_page
from web.pages import show_refusal

public_pages = Blueprint("public", __name__, url_prefix="/public")
log = logging.getLogger("civicflow.public")
# The largest filing fits: two texts of 10,000 characters, each character up to 12 bytes once URL-encoded or
# JSON-escaped (an emoji), with the short fields. Nothing larger is read.
PUBLIC_MAX_BYTES = 256 * 1024
FILED = "civicflow.filed"  # the session key of the confirmation: the code of what this browser just filed
# How long the confirmation shows what was filed: long enough to note the code, short on a shared computer.
CONFIRMATION_SECONDS = 15 * 60
TITLES = {"appeal": "Appeal the removal of your comment", "dispute": "Dispute the City's Social Media Policy"}
EXAMPLE_CODE = "K7QM-4XPA-9RTD-2WEH-5NBC"
# The deadlines (engine settings, in business days) that run one after the other from a filing to the City's written
# response, in the order the procedures' diagrams take them; and the acknowledgement's, where there is one.
RESPONSE_DEADLINES = {"appeal": ("appeal_response",), "dispute": ("attorney_consultation", "dispute_response")}
ACKNOWLEDGEMENT_DEADLINES = {"dispute": "dispute_acknowledgement"}


def limit_body_size() -> None:
    """Before anything reads it (CSRF included): a public request's body is at most PUBLIC_MAX_BYTES."""
    if request.path.startswith(("/public/", "/api/v1/public/")):
        request.max_content_length = PUBLIC_MAX_BYTES


def _business_days(count: int) -> str:
    return f"{count} business day{'s' if count != 1 else ''}"


def expected_response(kind: str) -> str:
    """How long the City takes to answer this kind of filing, in business days, from its deadline settings."""
    days = current_app.extensions["civicflow.settings"].deadlines
    respond = _business_days(sum(days[name] for name in RESPONSE_DEADLINES[kind]))
    if kind in ACKNOWLEDGEMENT_DEADLINES:
        acknowledge = _business_days(days[ACKNOWLEDGEMENT_DEADLINES[kind]])
        return (
            f"The City acknowledges a {kind} within {acknowledge} and, after consulting the City Attorney, sends "
            f"its written response within {respond} of receiving it."
        )
    return f"The City sends its written response to an {kind} within {respond} of receiving it."


@public_pages.context_processor
def response_times() -> dict:
    """Every public page can say how long the City takes to answer; business days are the days City Hall is open."""
    return {"expected_response": expected_response}


def categories() -> list[tuple[str, str]]:
    """The removal categories: the policy's words and the same in plain words, in the policy's order."""
    return [(label, PLAIN_CATEGORIES[code]) for code, label in CATEGORIES]


def _notice_page_context() -> dict:
    current = public.notice_in_force(get_session())
    return {"notice": public.notice_blocks(current.body), "categories": categories()}


@public_pages.get("/")
def index():
    """What a member of the public can do here: appeal, dispute, follow a request; the notice."""
    return render_template("public/index.html", titles=TITLES, **_notice_page_context())


@public_pages.get("/notice")
def notice():
    """The City's public notice: the page every City account links to (the policy's Rules of Use)."""
    return render_template("public/notice.html", **_notice_page_context())


def _form_page(kind, form, general_errors=(), status=200):
    return render_template(
        "public/form.html",
        kind=kind,
        title=TITLES[kind],
        form=form,
        honeypot=HONEYPOT,
        general_errors=list(general_errors),
        **_notice_page_context(),
    ), status


def one_filing_at_a_time(view):
    """Run a filing (a POST) in the process's one place for public filings, outside its transaction.

    The API answers Busy (503); the web form notes it in `g.filing_busy` and comes back as written. The
    filing's transaction takes the write lock only after its first engine steps (public.submit), so that
    staff decisions do not wait behind a filing's computing (`g.write_after_reading`, web/db.transactional).
    """

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        if request.method != "POST":
            return view(*args, **kwargs)
        g.write_after_reading = True
        try:
            with public.one_filing_at_a_time():
                return view(*args, **kwargs)
        except Busy as exc:
            if request.blueprint == "api":
                raise
            g.filing_busy = exc.message
            return view(*args, **kwargs)

    return wrapper


@public_pages.route("/<any(appeal, dispute):kind>", methods=["GET", "POST"])
@one_filing_at_a_time
@transactional
def file(kind):
    """The appeal or dispute form; a filing starts the procedure and e-mails a receipt with the tracking code."""
    db = get_session()
    form = public_form(db, kind)(request.form if request.method == "POST" else None)
    if request.method == "GET":
        return _form_page(kind, form)
    if form[HONEYPOT].data:
        log.info("public %s refused: the honeypot field was filled", kind)
        form[HONEYPOT].data = ""  # a person who filled it by accident (an autofill) cannot reach it to clear it
        return _form_page(
            kind,
            form,
            [
                'The field "Leave this field empty" must be left empty; nothing was '
                "sent. Clear it and send the form again."
            ],
            status=400,
        )
    general: list[str] = []
    if form.validate():
        data = {
            name: field.data
            for name, field in form._fields.items()
            if name != HONEYPOT and field.data not in (None, "", [])
        }
        try:
            if g.get("filing_busy"):
                raise Busy(g.filing_busy)
            filed = public.submit(db, kind, data)
        except Invalid as exc:
            general = show_refusal(form, exc)
        except Busy as exc:
            general = [exc.message]  # the form comes back as they wrote it
        else:
            session[FILED] = {"code": filed.code, "at": time.time()}
            return redirect(url_for("public.received"), code=303)
    return _form_page(kind, form, general, status=400)


@public_pages.errorhandler(CSRFError)
def form_expired(_exc):
    """A form left open past its security token's lifetime: the same form again with what was written in it
    (nothing is lost, nothing was sent) and a fresh token."""
    kind = (request.view_args or {}).get("kind")
    if request.endpoint != "public.file" or kind not in TITLES:
        return error_page(
            400,
            "The form's security token was missing or has expired, so nothing was sent. Reload the page and try again.",
        )
    form = public_form(get_session(), kind)(request.form)
    form[HONEYPOT].data = ""
    return _form_page(
        kind,
        form,
        [
            "The page was open a long time, so for your security nothing was sent yet. "
            "What you wrote is below: check it and send it again."
        ],
        status=400,
    )


@public_pages.get("/received")
def received():
    """The confirmation of what this browser just filed: the tracking code, its link, a copy of what was sent."""
    filed_here = session.get(FILED)
    if not isinstance(filed_here, dict) or time.time() - filed_here.get("at", 0) > CONFIRMATION_SECONDS:
        session.pop(FILED, None)  # the next person at a shared computer does not see it
        return redirect(url_for("public.index"))
    code = filed_here["code"]
    db = get_session()
    filed = public.find(db, code)
    procedure = procedures.get(filed.instance.process_key)
    copy = public.what_was_sent(db, procedure, filed.instance.data)
    return render_template(
        "public/received.html",
        code=code,
        kind=filed.kind,
        title=TITLES[filed.kind],
        filed=filed,
        copy=copy,
        email=filed.instance.data.get(procedure.filer_email_field),
    )


@public_pages.get("/requests")
def lookup():
    """Find a request by its tracking code (typed from the receipt), then go to its status page."""
    form = lookup_form()(request.args)
    if "code" not in request.args:
        return render_template("public/lookup.html", form=form, example=EXAMPLE_CODE)
    raw = public.normalise(form.code.data or "")
    if raw is None:
        form.code.errors = [f"A tracking code has 20 letters and digits, like {EXAMPLE_CODE}."]
        return render_template("public/lookup.html", form=form, example=EXAMPLE_CODE), 400
    try:
        public.find(get_session(), raw)
    except NotFound:
        return _code_not_found(form)
    return redirect(url_for("public.status", tracking_code=public.format_code(raw)))


def _code_not_found(form):
    """The lookup again, with the code as typed and, next to it, that no request has it (the same for every wrong
    code)."""
    form.code.errors = [
        "No request has this tracking code. Check it against your receipt and try again; "
        "capitals and dashes do not matter."
    ]
    return render_template("public/lookup.html", form=form, example=EXAMPLE_CODE), 404


@public_pages.get("/requests/<tracking_code>")
def status(tracking_code):
    """The public facts of one request: received, acknowledged, responded, and the City's written response."""
    db = get_session()
    try:
        found = public.find(db, tracking_code)
    except NotFound:
        return _code_not_found(lookup_form()(data={"code": tracking_code[:64]}))
    facts = public.status_of(db, found)
    page = render_template(
        "public/status.html",
        facts=facts,
        title=TITLES[facts.kind],
        code=public.format_code(public.normalise(tracking_code)),
    )
    return page, 200, {"X-Robots-Tag": "noindex"}


# The views the rate limits apply to (web/__init__.py): what writes, and what looks a code up.
SUBMISSIONS = ["public.file"]
LOOKUPS = ["public.lookup", "public.status"]
