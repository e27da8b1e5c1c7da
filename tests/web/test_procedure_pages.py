"""The staff pages of the four newer procedures, through the real app with CSRF on: filing a removal with a real
screenshot, the refusals of its start page, and each procedure carried to its end on its task pages by the
people whose lanes they are; the attorney's advice shown only to those who may read it."""

from __future__ import annotations

import dataclasses
import hashlib
import html
import io
import re

import pytest
from sqlalchemy import func, select
from werkzeug.datastructures import FileStorage

from engine.db.models import AccountManager, Attachment, Blob, OutboxMail, ProcessInstance, Task, User
from tests.engine.test_attachments import image_bytes
from tests.procedures import add_account, png_bytes
from tests.web.pages import csrf_token, error_next_to, post_form, text_of
from tests.web.test_attachment_pages import multipart

REMOVAL_PAGE = "/requests/new/content_removal"
CATEGORY_WORDS = ("Material unrelated to City government or services", "Commercial promotions or spam")
RATIONALE = "A commercial promotion unrelated to City services."
ADVICE = "PRIVILEGED-7731: the categories survive Minnesota case law; a narrower spam clause would be safer."
RESPONSE = "The City has reviewed the removal categories with its attorney and will narrow the spam category."
APPELLANT, DISPUTANT = "jo.public@example.net", "sam.citizen@example.net"
_IMG = re.compile(r'<img src="(/attachments/[0-9a-f-]{36})" alt="([^"]*)"')


# ---- helpers -----------------------------------------------------------------------------------------


def removal_form(account_id: int, **changes) -> dict:
    """The removal start form as a manager fills it in (categories ticked out of the policy's order)."""
    return {
        "account_id": str(account_id),
        "stage": "published",
        "content_url": "https://facebook.com/cityofwsp/posts/1",
        "author_name": "J. Doe",
        "content_text": "Buy cheap watches at example.biz!!!",
        "categories": ["spam", "unrelated"],
        "rationale": RATIONALE,
        **changes,
    }


def a_file(data: bytes, filename: str = "removed-comment.png", content_type: str = "image/png") -> FileStorage:
    """A file as a browser uploads it."""
    return FileStorage(io.BytesIO(data), filename, content_type=content_type)


def file_removal(page, fields: dict, screenshot: FileStorage | str | None):
    """Post the removal start form as multipart/form-data, with the page's CSRF token, as the browser does."""
    body = {**fields, "csrf_token": csrf_token(page.get(REMOVAL_PAGE))}
    if screenshot is not None:
        body["screenshot"] = screenshot
    return page.post(REMOVAL_PAGE, **multipart(body))


def stored(sessions) -> tuple[int, int, int, int]:
    """Requests, attachments, blobs and queued letters: what a refused start form must not leave behind."""
    with sessions() as s:
        return tuple(
            s.scalar(select(func.count()).select_from(model))
            for model in (ProcessInstance, Attachment, Blob, OutboxMail)
        )


def record_value(response, label: str) -> str | list[str]:
    """The value of one row of a page's record: its text, or its items when it lists several."""
    match = re.search(
        rf"<dt>{re.escape(html.escape(label))}</dt><dd[^>]*>(.*?)</dd>", response.get_data(as_text=True), flags=re.S
    )
    assert match, f"no record row {label!r}"
    items = re.findall(r"<li>(.*?)</li>", match.group(1), flags=re.S)
    text = [html.unescape(re.sub(r"<[^>]+>", "", item)).strip(" ,") for item in items]
    return text or html.unescape(re.sub(r"<[^>]+>", "", match.group(1))).strip()


def instance_id_of(response) -> int:
    """The request a start form redirected to."""
    assert response.status_code == 302, text_of(response)[-800:]
    return int(re.fullmatch(r"/instances/(\d+)", response.headers["Location"]).group(1))


def open_task(sessions, instance_id: int, form_key: str) -> str:
    """The id of the request's open task with this form key."""
    with sessions() as s:
        return s.scalar(
            select(Task.id).where(Task.instance_id == instance_id, Task.form_key == form_key, Task.status == "open")
        )


def complete(page, task_id: str, data: dict) -> str:
    """Submit a task page's form with its CSRF token; returns the inbox's message about it."""
    response = post_form(page, f"/tasks/{task_id}", data)
    assert response.status_code == 302, text_of(response)[-800:]
    return text_of(page.get(response.headers["Location"]))


def instance(sessions, instance_id: int) -> ProcessInstance:
    """The request as it is now (detached)."""
    with sessions() as s:
        row = s.get(ProcessInstance, instance_id)
        s.expunge(row)
        return row


def letters(sessions, instance_id: int) -> list[tuple[list[str], str, str]]:
    """The request's queued letters: (recipients, subject, body), oldest first."""
    with sessions() as s:
        return [
            (m.recipients, m.subject, m.body)
            for m in s.scalars(select(OutboxMail).where(OutboxMail.instance_id == instance_id).order_by(OutboxMail.id))
        ]


def filed_removal(browser_as, city) -> tuple[int, str, bytes]:
    """A removal filed by the moderator through the start page: (request id, screenshot URL, the PNG's bytes)."""
    page = browser_as("moderator")
    image = png_bytes(200, 120)
    removal_id = instance_id_of(file_removal(page, removal_form(city.facebook), a_file(image)))
    [(src, _alt)] = _IMG.findall(page.get(f"/instances/{removal_id}").get_data(as_text=True))
    return removal_id, src, image


# ---- start pages -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "who", "words"),
    [
        ("new_account_request", "requester", ["Platform", "Proposed social media managers"]),
        ("manager_change", "requester", ["Facebook: City of West St. Paul", "Add as a manager", "Reason"]),
        (
            "content_removal",
            "moderator",
            [
                "Facebook: City of West St. Paul",
                "Denied before publication",
                *CATEGORY_WORDS,
                "Screenshot of the content",
                "at most 5 MB",
            ],
        ),
        (
            "removal_appeal",
            "records",
            ["Appellant's name", "X (Twitter): West St. Paul Police", "Removal record number, if known", "Letter"],
        ),
        (
            "legality_dispute",
            "requester",
            ["Disputant's e-mail address", "The portion of the policy disputed", "The basis of the dispute", "E-mail"],
        ),
    ],
)
def test_each_procedures_start_page_renders_for_someone_who_may_file_it(browser_as, city, key, who, words):
    response = browser_as(who).get(f"/requests/new/{key}")
    assert response.status_code == 200
    shown = text_of(response)
    assert "Submit request" in shown
    for word in words:
        assert word in shown
    assert "Neighborhood watcher" not in shown  # the investigative profile is for police roles only


def test_the_removal_form_asks_for_a_file_and_offers_the_categories_as_checkboxes(browser_as, city):
    body = browser_as("moderator").get(REMOVAL_PAGE).get_data(as_text=True)
    assert 'enctype="multipart/form-data"' in body
    assert re.search(r'<input accept="image/png,image/jpeg,image/webp"[^>]* name="screenshot"[^>]* type="file"', body)
    boxes = re.findall(r'<input id="categories-\d+" name="categories" type="checkbox" value="(\w+)">', body)
    assert boxes[:2] == ["obscene", "threat"] and len(boxes) == 9  # every category, none required by itself
    # The only account this manager manages is chosen already; the police accounts are not offered.
    assert re.search(
        rf'<input checked id="account_id-0" name="account_id" required type="radio" '
        rf'value="{city.facebook}">',
        body,
    )
    assert f'value="{city.police_x}"' not in body


def test_new_request_lists_content_removal_only_for_managers_of_an_account(browser_as, city):
    assert "Remove content (with a screenshot)" in text_of(browser_as("moderator").get("/requests/new"))
    colleague = browser_as("colleague")
    shown = text_of(colleague.get("/requests/new"))
    assert "Remove content (with a screenshot)" not in shown
    assert "Dispute of the policy's legality" in shown and "Add or remove a social media manager" in shown
    assert colleague.get(REMOVAL_PAGE).status_code == 403


def test_new_request_lists_the_procedures_in_the_policys_order(browser_as, city):
    body = browser_as("moderator").get("/requests/new").get_data(as_text=True)
    links = re.findall(r'href="/requests/new/(\w+)"', body)
    assert links == ["new_account_request", "manager_change", "content_removal", "removal_appeal", "legality_dispute"]


# ---- content removal ---------------------------------------------------------------------------------


def test_a_manager_files_a_removal_with_a_real_png_and_deletes_the_content_on_the_task_page(browser_as, city, sessions):
    page = browser_as("moderator")
    image = png_bytes(240, 160)
    response = file_removal(page, removal_form(city.facebook), a_file(image, "comment 1.png"))
    removal_id = instance_id_of(response)
    shown_page = page.get(response.headers["Location"])
    shown = text_of(shown_page)
    assert (
        "Your request Removal on Facebook: City of West St. Paul (content by J. Doe) was submitted. "
        "It now waits for: Delete the content and confirm (Social Media Manager)."
    ) in shown
    # The categories in the policy's words and order, under a label without the form's "(one or more)".
    assert record_value(shown_page, "Removal categories") == list(CATEGORY_WORDS)
    assert f"Rationale: how the content falls into the categories {RATIONALE}" in shown
    [(src, alt)] = _IMG.findall(shown_page.get_data(as_text=True))
    assert alt == f"Screenshot of the content (request #{removal_id})"
    served = page.get(src)
    assert served.status_code == 200 and served.mimetype == "image/png"
    assert hashlib.sha256(served.get_data()).hexdigest() == hashlib.sha256(image).hexdigest()

    task_id = open_task(sessions, removal_id, "confirm_deletion")
    task_page = page.get(f"/tasks/{task_id}")
    assert _IMG.findall(task_page.get_data(as_text=True)) == [(src, alt)]
    assert "The content is deleted" in text_of(task_page) and "Commercial promotions or spam" in text_of(task_page)
    message = complete(page, task_id, {"deleted": "y", "explanation_posted": "y"})
    assert "Delete the content and confirm done for Removal on Facebook" in message
    assert "The request is completed: removed." in message
    assert (instance(sessions, removal_id).status, instance(sessions, removal_id).outcome) == ("completed", "removed")

    history = text_of(page.get(f"/instances/{removal_id}"))
    assert "Deleted the content · Delete the content and confirm Moderator (Social Media Manager)" in history
    assert "The content is deleted Yes" in history
    for reader in ("moderator", "comms"):  # the filer and the Communications Manager
        again = browser_as(reader).get(src)
        assert again.status_code == 200 and again.get_data() == image
    refused = browser_as("colleague").get(src)
    assert refused.status_code == 403 and image not in refused.get_data()


def test_keeping_the_content_needs_a_written_reason_next_to_the_comment(browser_as, city, sessions, unchanged):
    page = browser_as("moderator")
    removal_id = instance_id_of(file_removal(page, removal_form(city.facebook), a_file(png_bytes())))
    task_id = open_task(sessions, removal_id, "confirm_deletion")
    with unchanged():
        response = post_form(page, f"/tasks/{task_id}", {"explanation_posted": ""})
    assert response.status_code == 400
    assert error_next_to(response, "comment") == "Write why the content was not removed."
    assert _IMG.findall(response.get_data(as_text=True))  # the record, screenshot included, is still there
    done = complete(page, task_id, {"comment": "The author deleted it before we could."})
    assert "The request is completed: not removed." in done
    shown = text_of(page.get(f"/instances/{removal_id}"))
    assert "Did not delete the content · Delete the content and confirm" in shown
    assert "The author deleted it before we could." in shown


def test_a_comment_denied_before_publication_reads_as_denied_not_deleted(browser_as, city, sessions):
    page = browser_as("moderator")
    removal_id = instance_id_of(
        file_removal(page, removal_form(city.facebook, stage="pre_publication"), a_file(png_bytes()))
    )
    task_id = open_task(sessions, removal_id, "confirm_deletion")
    assert "The content is denied" in text_of(page.get(f"/tasks/{task_id}"))
    complete(page, task_id, {"deleted": "y"})
    shown = text_of(page.get(f"/instances/{removal_id}"))
    assert "Denied the content before publication · Delete the content and confirm" in shown
    assert "When Denied before publication" in shown and "Deleted the content" not in shown


NOT_AN_IMAGE = "This file is not an image. Upload a screenshot saved as PNG, JPEG or WebP."


@pytest.mark.parametrize(
    ("case", "changes", "screenshot", "field", "message"),
    [
        (
            "text renamed .png",
            {},
            (b"The comment said things we removed.\n", "comment.png"),
            "screenshot",
            NOT_AN_IMAGE,
        ),
        (
            "truncated PNG",
            {},
            (image_bytes("PNG")[:3000], "shot.png"),
            "screenshot",
            "The image is damaged or incomplete; save the screenshot again and upload it.",
        ),
        (
            "HTML file",
            {},
            (b"<!doctype html><script>alert(document.cookie)</script>", "shot.html", "text/html"),
            "screenshot",
            NOT_AN_IMAGE,
        ),
        ("empty upload", {}, (b"", "empty.png"), "screenshot", "The file is empty; choose a screenshot to upload."),
        ("no file chosen", {}, (b"", ""), "screenshot", "Choose an image file to upload."),
        ("text instead of a file", {}, "removed-comment.png", "screenshot", "Choose an image file to upload."),
        ("no category", {"categories": []}, (png_bytes(), "shot.png"), "categories", "Choose at least one."),
        (
            "a category outside the policy",
            {"categories": ["rude"]},
            (png_bytes(), "shot.png"),
            "categories",
            "'rude' is not a valid choice for this field.",
        ),
        (
            "another manager's account",
            {"account_id": "police_x"},
            (png_bytes(), "shot.png"),
            "account_id",
            "You are not a social media manager of this account.",
        ),
        (
            "an account not in the registry",
            {"account_id": "999"},
            (png_bytes(), "shot.png"),
            "account_id",
            '999 is not one of the choices for "Account".',
        ),
    ],
)
def test_a_refused_removal_says_why_next_to_the_field_and_stores_nothing(
    browser_as, city, sessions, unchanged, case, changes, screenshot, field, message
):
    page = browser_as("moderator")
    changes = {k: str(getattr(city, v)) if v == "police_x" else v for k, v in changes.items()}
    before = stored(sessions)
    with unchanged():
        # A fresh file each run: the upload's stream is read once.
        upload = screenshot if isinstance(screenshot, str) else a_file(*screenshot)
        response = file_removal(page, {**removal_form(city.facebook), **changes}, upload)
    assert response.status_code == 400, case
    assert error_next_to(response, field).startswith(message), case
    assert stored(sessions) == before  # no request, no attachment, no blob, no letter
    shown = text_of(response)
    assert "nothing was saved" in shown
    assert "Nothing was saved, this file included: choose it again before you submit." in shown
    assert 'value="J. Doe"' in response.get_data(as_text=True)  # what was typed comes back


def test_an_upload_over_the_attachment_limit_is_refused_next_to_the_screenshot(
    app, settings, browser_as, city, sessions, unchanged
):
    app.extensions["civicflow.settings"] = dataclasses.replace(settings, max_attachment_bytes=2000)
    before = stored(sessions)
    with unchanged():
        response = file_removal(browser_as("moderator"), removal_form(city.facebook), a_file(image_bytes("PNG")))
    assert response.status_code == 400
    assert error_next_to(response, "screenshot") == "The file is larger than 2000 bytes; upload a smaller screenshot."
    assert stored(sessions) == before


def test_an_upload_over_the_request_limit_brings_the_form_back_saying_why(app, browser_as, city, sessions, unchanged):
    page = browser_as("moderator")
    token = csrf_token(page.get(REMOVAL_PAGE))
    app.config["MAX_CONTENT_LENGTH"] = 4096
    before = stored(sessions)
    with unchanged():
        response = page.post(
            REMOVAL_PAGE,
            **multipart({**removal_form(city.facebook), "csrf_token": token, "screenshot": a_file(image_bytes("PNG"))}),
        )
    assert response.status_code == 413
    assert error_next_to(response, "screenshot") == "The file is larger than 5 MB; upload a smaller screenshot."
    assert "larger than this server accepts, so nothing was saved" in text_of(response)
    assert 'enctype="multipart/form-data"' in response.get_data(as_text=True)
    assert stored(sessions) == before


def test_someone_who_manages_no_account_cannot_file_a_removal_even_by_crafting_the_post(
    browser_as, city, sessions, unchanged
):
    page = browser_as("colleague")
    token = csrf_token(page.get("/requests/new"))
    before = stored(sessions)
    with unchanged():
        response = page.post(
            REMOVAL_PAGE,
            **multipart({**removal_form(city.facebook), "csrf_token": token, "screenshot": a_file(png_bytes())}),
        )
    assert response.status_code == 403
    assert stored(sessions) == before


# ---- manager change ----------------------------------------------------------------------------------


def test_adding_a_manager_goes_through_head_and_written_approval_to_the_registry(browser_as, city, sessions):
    requester = browser_as("requester")
    response = post_form(
        requester,
        "/requests/new/manager_change",
        {
            "account_id": str(city.facebook),
            "action": "add",
            "manager": "newbie",
            "reason": "Covers the parks events calendar.",
        },
    )
    change_id = instance_id_of(response)
    assert "It now waits for: Department Head permission (Department Head)." in text_of(
        requester.get(response.headers["Location"])
    )

    head = browser_as("parks_head")
    head_task = open_task(sessions, change_id, "department_head_review")
    head_page = head.get(f"/tasks/{head_task}")
    assert "Add Newbie as manager of Facebook: City of West St. Paul" in text_of(head_page)
    assert record_value(head_page, "The person") == "Newbie"  # by name, as colleagues know them
    assert "Communications Manager written approval" in complete(
        head, head_task, {"decision": "approve", "comment": "Newbie is ready."}
    )
    comms = browser_as("comms")
    complete(
        comms,
        open_task(sessions, change_id, "communications_review"),
        {"decision": "approve", "comment": "Approved in writing."},
    )
    confirm = open_task(sessions, change_id, "confirm_access_change")
    assert "The person now has administrative access to the account" in text_of(requester.get(f"/tasks/{confirm}"))
    assert "The request is completed: approved." in complete(requester, confirm, {"access_changed": "y"})

    with sessions() as s:
        managers = s.scalars(
            select(User.username)
            .join(AccountManager)
            .where(AccountManager.account_id == city.facebook, AccountManager.removed_at.is_(None))
        ).all()
    assert "newbie" in managers
    shown = text_of(requester.get(f"/instances/{change_id}"))
    assert "Approved · Department Head permission Parks_Head (Department Head)" in shown
    assert "Newbie is ready." in shown and "Approved in writing." in shown
    assert "Confirmed the access change · Confirm access granted or revoked Requester (Requester)" in shown


def test_a_long_list_of_accounts_starts_with_none_chosen_and_must_be_chosen(browser_as, city, session, unchanged):
    for number in range(3):  # five accounts a requester may see: a select instead of radio buttons
        add_account(
            session,
            f"Parks channel {number}",
            f"https://youtube.com/@wspparks{number}",
            "parks",
            [],
            platform="youtube",
        )
    page = browser_as("requester")
    body = page.get("/requests/new/manager_change").get_data(as_text=True)
    assert re.search(r'<select id="account_id" name="account_id" required><option value="">Choose one</option>', body)
    assert "selected" not in re.search(r"<select id=\"account_id\".*?</select>", body, flags=re.S).group(0)
    with unchanged():
        response = post_form(
            page,
            "/requests/new/manager_change",
            {"account_id": "", "action": "add", "manager": "newbie", "reason": "Help."},
        )
    assert response.status_code == 400
    assert error_next_to(response, "account_id") == "This field is required."


def test_a_manager_change_naming_nobody_is_refused_next_to_the_person(browser_as, city, unchanged):
    with unchanged():
        response = post_form(
            browser_as("requester"),
            "/requests/new/manager_change",
            {"account_id": str(city.facebook), "action": "add", "manager": "nobody.here", "reason": "x"},
        )
    assert response.status_code == 400
    assert error_next_to(response, "manager") == 'No active user named "nobody.here".'


def test_the_person_is_chosen_by_name_from_the_active_users_and_stored_as_a_username(
    browser_as, city, sessions, make_user
):
    make_user("pat.lee", department="parks", name="Pat Lee")
    gone = make_user("sam.gone", department="parks", name="Sam Gone")
    with sessions() as s:
        s.get(User, gone.id).active = False
        s.commit()
    page = browser_as("requester")
    body = page.get("/requests/new/manager_change").get_data(as_text=True)
    chooser = re.search(r'<select[^>]*id="manager".*?</select>', body, flags=re.S).group(0)
    assert "data-person-filter" in chooser and "/static/js/people.js" in body
    assert '<option value="">Choose a person</option>' in chooser
    assert '<option value="pat.lee">Pat Lee, Parks and Recreation</option>' in chooser
    assert "Sam Gone" not in chooser and "sam.gone" not in chooser  # no longer active: not offered

    form = {"account_id": str(city.facebook), "action": "add", "manager": "pat.lee", "reason": "Covers events."}
    change_id = instance_id_of(post_form(page, "/requests/new/manager_change", form))
    head_page = browser_as("parks_head").get(f"/tasks/{open_task(sessions, change_id, 'department_head_review')}")
    assert record_value(head_page, "The person") == "Pat Lee"
    assert instance(sessions, change_id).data["manager"] == "pat.lee"


def test_proposed_managers_are_chosen_by_name_and_reviewers_read_their_names(browser_as, city, sessions, make_user):
    make_user("pat.lee", department="parks", name="Pat Lee")
    page = browser_as("requester")
    body = page.get("/requests/new/new_account_request").get_data(as_text=True)
    chooser = re.search(r'<select[^>]*id="proposed_managers".*?</select>', body, flags=re.S).group(0)
    assert "multiple" in chooser and '<option value="pat.lee">Pat Lee, Parks and Recreation</option>' in chooser
    form = {
        "platform": "instagram",
        "account_name": "WSP Parks",
        "department": "parks",
        "purpose": "Events.",
        "audience": "Families.",
        "proposed_managers": ["pat.lee", "newbie"],
    }
    request_id = instance_id_of(post_form(page, "/requests/new/new_account_request", form))
    head_page = browser_as("parks_head").get(f"/tasks/{open_task(sessions, request_id, 'department_head_review')}")
    assert record_value(head_page, "Proposed social media managers") == ["Pat Lee", "Newbie"]
    assert instance(sessions, request_id).data["proposed_managers"] == ["pat.lee", "newbie"]


# ---- appeal of a removal -----------------------------------------------------------------------------


def appeal_form(account_id: int, **changes) -> dict:
    """An appeal as the Records Officer types it from a letter."""
    return {
        "appellant_name": "Jo Public",
        "appellant_email": APPELLANT,
        "account": str(account_id),
        "comment_text": "The library hours changed again?",
        "explanation": "My comment asked about City services.",
        "received_via": "mail",
        **changes,
    }


def test_an_appeal_is_reviewed_beside_its_removal_answered_in_writing_and_the_comment_restored(
    browser_as, city, sessions
):
    removal_id, src, image = filed_removal(browser_as, city)
    records = browser_as("records")
    appeal_id = instance_id_of(
        post_form(records, "/requests/new/removal_appeal", appeal_form(city.facebook, removal_id=str(removal_id)))
    )

    comms = browser_as("comms")
    review = open_task(sessions, appeal_id, "appeal_review")
    page = comms.get(f"/tasks/{review}")
    shown = text_of(page)
    assert f"Linked: Removal on Facebook: City of West St. Paul (content by J. Doe) (#{removal_id})" in shown
    assert record_value(page, "Removal categories") == list(CATEGORY_WORDS)
    assert record_value(page, "Rationale: how the content falls into the categories") == RATIONALE
    assert _IMG.findall(page.get_data(as_text=True)) == [(src, f"Screenshot of the content (request #{removal_id})")]
    assert comms.get(src).get_data() == image

    response_text = "On review, your comment was about City services; it will be restored."
    refused = post_form(comms, f"/tasks/{review}", {"decision": "reinstate", "response_text": ""})
    assert refused.status_code == 400
    assert error_next_to(refused, "response_text") == "This field is required."
    assert letters(sessions, appeal_id) == []
    reviewed = complete(comms, review, {"decision": "reinstate", "response_text": response_text})
    assert "It now waits for: Restore or repost the content (Social Media Manager)." in reviewed
    [(to, subject, body)] = letters(sessions, appeal_id)
    assert (to, subject) == ([APPELLANT], "Your appeal of a removed comment")
    assert "Dear Jo Public" in body and response_text in body

    moderator = browser_as("moderator")
    restore = open_task(sessions, appeal_id, "restore_content")
    assert "The comment is restored or reposted" in text_of(moderator.get(f"/tasks/{restore}"))
    done = complete(moderator, restore, {"restored": "y", "restored_url": "https://facebook.com/cityofwsp/posts/1?c=2"})
    assert "The request is completed: reinstated." in done
    history = text_of(records.get(f"/instances/{appeal_id}"))
    assert "Reinstated the comment · Review the appeal and write the response Comms (Communications Manager)" in history
    assert response_text in history
    assert "E-mail queued for sending · “Your appeal of a removed comment”" in history
    assert "Restored the comment" in history


def test_an_appeal_naming_a_removal_on_another_account_is_refused_next_to_the_number(
    browser_as, city, sessions, unchanged
):
    removal_id, _src, _image = filed_removal(browser_as, city)
    before = stored(sessions)
    with unchanged():
        response = post_form(
            browser_as("records"),
            "/requests/new/removal_appeal",
            appeal_form(city.police_x, removal_id=str(removal_id)),
        )
    assert response.status_code == 400
    assert error_next_to(response, "removal_id") == (
        f"Removal record {removal_id} is about Facebook: City of West St. Paul, not this account."
    )
    assert stored(sessions) == before


def test_the_linked_removal_is_shown_only_to_those_who_may_see_it(browser_as, city, sessions):
    removal_id, src, image = filed_removal(browser_as, city)
    clerk = browser_as("requester")  # enters the letter; has no business with the removal record itself
    appeal_id = instance_id_of(
        post_form(clerk, "/requests/new/removal_appeal", appeal_form(city.facebook, removal_id=str(removal_id)))
    )
    page = clerk.get(f"/instances/{appeal_id}")
    assert page.status_code == 200
    assert "Linked:" not in text_of(page) and src not in page.get_data(as_text=True)
    assert f"Removal record number, if known {removal_id}" in text_of(page)
    assert clerk.get(src).status_code == 403


# ---- dispute of the policy's legality ----------------------------------------------------------------


def dispute_form(**changes) -> dict:
    """A dispute as staff type it from an e-mail."""
    return {
        "disputant_name": "Sam Citizen",
        "disputant_email": DISPUTANT,
        "policy_section": "Rules of Use, the removal categories",
        "basis": "They restrict speech protected in a public forum.",
        "received_via": "email",
        **changes,
    }


def advised_dispute(browser_as, sessions) -> tuple[int, str, str]:
    """A dispute entered by the requester and advised on by the attorney: (request id, consultation, response)."""
    clerk = browser_as("requester")
    dispute_id = instance_id_of(post_form(clerk, "/requests/new/legality_dispute", dispute_form()))
    attorney = browser_as("attorney")
    consultation = open_task(sessions, dispute_id, "attorney_consultation")
    notice = "The advice is attorney-client privileged: only the City Attorney and the Communications Manager"
    assert notice in text_of(attorney.get(f"/tasks/{consultation}"))
    done = complete(attorney, consultation, {"advice": ADVICE, "recommendation": "amend"})
    assert "It now waits for: Write the City's response (Communications Manager)." in done
    return dispute_id, consultation, open_task(sessions, dispute_id, "dispute_response")


def test_a_dispute_is_acknowledged_advised_answered_and_followed_up_on_its_pages(browser_as, city, sessions):
    dispute_id, _consultation, response_task = advised_dispute(browser_as, sessions)
    [acknowledgement] = letters(sessions, dispute_id)
    assert acknowledgement[:2] == ([DISPUTANT], "We received your dispute of the Social Media Policy")

    comms = browser_as("comms")
    complete(comms, response_task, {"response_text": RESPONSE})
    sent = letters(sessions, dispute_id)
    assert [(to, subject) for to, subject, _ in sent] == [
        ([DISPUTANT], "We received your dispute of the Social Media Policy"),
        ([DISPUTANT], "The City's response to your dispute of the Social Media Policy"),
    ]
    assert RESPONSE in sent[1][2]
    amendment = open_task(sessions, dispute_id, "policy_amendment")
    summary = "Narrow the spam category; to the City Council on December 8."
    assert "The request is completed: responded." in complete(comms, amendment, {"amendment_summary": summary})

    history = text_of(browser_as("requester").get(f"/instances/{dispute_id}"))
    for words in (
        "Submitted the request Requester (Requester)",
        "E-mail queued for sending · “We received your dispute of the Social Media Policy” civicflow (automatic)",
        "Withheld: attorney-client privileged; only the City Attorney and the Communications Manager may read it"
        " · Consult the City Attorney Attorney (City Attorney)",
        "Sent the written response · Write the City's response Comms (Communications Manager)",
        RESPONSE,
        "E-mail queued for sending · “The City's response to your dispute of the Social Media Policy”",
        "Proposed an amendment · Follow up: amend the policy Comms (Communications Manager) ",
        summary,
    ):
        assert words in history
    assert "The body of the City's written response " + RESPONSE in history  # the record's label


def test_the_attorneys_advice_is_read_only_by_the_city_attorney_and_the_communications_manager(
    browser_as, api, city, sessions
):
    dispute_id, consultation, response_task = advised_dispute(browser_as, sessions)
    for reader in ("attorney", "comms"):
        page = browser_as(reader)
        for path in (f"/instances/{dispute_id}", f"/tasks/{consultation}", f"/tasks/{response_task}"):
            shown = text_of(page.get(path))
            assert f"only the City Attorney and the Communications Manager see this) {ADVICE}" in shown, (reader, path)
        assert ADVICE in api(reader).get(f"/api/v1/instances/{dispute_id}").get_data(as_text=True)

    for outsider in ("records", "requester", "colleague"):  # the Records Officer, who entered it, anyone else
        page = browser_as(outsider)
        paths = (
            f"/instances/{dispute_id}",
            f"/tasks/{consultation}",
            f"/tasks/{response_task}",
            "/instances",
            "/inbox?view=mine",
            "/inbox?view=available",
        )
        for path in paths:
            assert ADVICE not in page.get(path).get_data(as_text=True), (outsider, path)
        assert ADVICE not in api(outsider).get(f"/api/v1/instances/{dispute_id}").get_data(as_text=True)
    for overseer in ("records", "requester"):  # they see the request, and that the consultation is withheld
        shown = text_of(browser_as(overseer).get(f"/instances/{dispute_id}"))
        for field in ("Advice", "Recommendation"):
            assert (
                f"{field} Withheld: attorney-client privileged; only the City Attorney and the Communications "
                "Manager may read it."
            ) in shown

    complete(browser_as("comms"), response_task, {"response_text": RESPONSE})
    with sessions() as s:
        mail = s.scalars(select(OutboxMail)).all()
    assert len(mail) == 2 and not [m for m in mail if ADVICE in f"{m.subject} {m.body}"]


def test_the_attorneys_recommendation_is_withheld_exactly_where_the_advice_is(
    browser_as, api, city, sessions, make_user
):
    make_user("city_admin", department="administration", roles=["city_administrator"], name="Casey Administrator")
    dispute_id, consultation, response_task = advised_dispute(browser_as, sessions)
    paths = (f"/instances/{dispute_id}", f"/tasks/{consultation}", f"/tasks/{response_task}", "/instances")
    for reader in ("attorney", "comms"):
        page = browser_as(reader)
        shown = text_of(page.get(f"/instances/{dispute_id}"))
        assert "Recommendation (privileged: only the City Attorney and the Communications Manager see this) " in shown
        assert "Advised: amend the policy · Consult the City Attorney" in shown
        assert "Advised: amend the policy" in text_of(page.get(f"/tasks/{response_task}"))
        body = api(reader).get(f"/api/v1/instances/{dispute_id}").get_json()
        assert body["data"]["recommendation"] == "amend"
        assert "amend" in [event["decision"] for event in body["history"]]

    for outsider in ("records", "city_admin", "requester"):
        page = browser_as(outsider)
        shown = text_of(page.get(f"/instances/{dispute_id}"))
        assert (
            "Recommendation Withheld: attorney-client privileged; only the City Attorney and the Communications "
            "Manager may read it."
        ) in shown, outsider
        assert (
            "Withheld: attorney-client privileged; only the City Attorney and the Communications Manager may read "
            "it · Consult the City Attorney"
        ) in shown, outsider
        for path in paths:
            assert "amend the policy" not in page.get(path).get_data(as_text=True).lower(), (outsider, path)
        answer = api(outsider).get(f"/api/v1/instances/{dispute_id}")
        assert answer.status_code == 200
        assert "recommendation" not in answer.get_json()["data"]
        assert "amend" not in answer.get_data(as_text=True).lower(), outsider


def test_a_dispute_with_a_bad_address_is_refused_next_to_it(browser_as, city, sessions, unchanged):
    before = stored(sessions)
    with unchanged():
        response = post_form(
            browser_as("requester"), "/requests/new/legality_dispute", dispute_form(disputant_email="sam@")
        )
    assert response.status_code == 400
    assert error_next_to(response, "disputant_email") == "Must be an e-mail address such as name@example.org."
    assert stored(sessions) == before


# ---- wording on staff pages ---------------------------------------------------------------------------


def test_the_delete_task_links_the_content_and_says_who_acts_and_what_to_confirm(browser_as, city, sessions):
    page = browser_as("moderator")
    removal_id = instance_id_of(file_removal(page, removal_form(city.facebook), a_file(png_bytes())))
    task_page = page.get(f"/tasks/{open_task(sessions, removal_id, 'confirm_deletion')}")
    body = task_page.get_data(as_text=True)
    assert (
        '<dt>Link to the content</dt><dd><a href="https://facebook.com/cityofwsp/posts/1" rel="noopener noreferrer" '
        'target="_blank">https://facebook.com/cityofwsp/posts/1</a></dd>'
    ) in body
    shown = text_of(task_page)
    assert "Who: Social Media Manager" in shown and "Lane:" not in shown
    assert "Remove content (with a screenshot) ·" in shown


def test_a_review_says_to_whom_a_return_goes_and_a_confirmation_is_headed_confirm(browser_as, city, sessions):
    page = browser_as("requester")
    form = {
        "platform": "youtube",
        "account_name": "WSP Parks",
        "department": "parks",
        "purpose": "Events.",
        "audience": "Families.",
        "proposed_managers": ["requester"],
    }
    request_id = instance_id_of(post_form(page, "/requests/new/new_account_request", form))
    head = browser_as("parks_head")
    review = head.get(f"/tasks/{open_task(sessions, request_id, 'department_head_review')}")
    shown = text_of(review)
    assert 'YouTube account "WSP Parks"' in shown
    assert "Your decision" in shown and "Return to the requester for changes" in shown
    assert record_value(review, "Platform") == "YouTube"

    manager_change = {"account_id": str(city.facebook), "action": "add", "manager": "newbie", "reason": "Events."}
    change_id = instance_id_of(post_form(page, "/requests/new/manager_change", manager_change))
    complete(head, open_task(sessions, change_id, "department_head_review"), {"decision": "approve"})
    complete(browser_as("comms"), open_task(sessions, change_id, "communications_review"), {"decision": "approve"})
    confirm = text_of(page.get(f"/tasks/{open_task(sessions, change_id, 'confirm_access_change')}"))
    assert "Go to the form: confirm" in confirm and "Confirm The person now has administrative access" in confirm
    assert "Your decision" not in confirm


def test_platforms_are_spelled_as_they_spell_themselves(browser_as, city):
    shown = text_of(browser_as("requester").get("/requests/new/new_account_request"))
    for name in ("YouTube", "LinkedIn", "TikTok", "X (Twitter)", "Nextdoor"):
        assert name in shown
    for wrong in ("Youtube", "Linkedin", "Tiktok"):
        assert wrong not in shown
