"""The help page for staff: what each procedure is for and who acts in it, the words staff meet, and whom to ask."""

from __future__ import annotations

from flask import Blueprint, render_template
from flask_login import login_required

from engine import procedures
from engine.people import staff
from engine.people.roles import GRANTABLE_ROLES, role_name
from web.db import get_session

help_pages = Blueprint("help", __name__, url_prefix="/help")

# What each procedure is for and who acts in it, in the policy's order (docs/procedures.md).
PURPOSES = {
    "new_account_request": (
        "A new City social media account or a police investigative profile (Rules of Use, paragraphs 2-4).",
        "The requester asks; the head of the owning department approves; the Communications Manager gives written "
        "approval (for an investigative profile, the Administrative Lieutenant instead); the requester sets the "
        "account up and confirms it is marked as the City's, links www.wspmn.gov and links the public notice.",
    ),
    "manager_change": (
        "Adding or removing a person as manager of a registry account (Rules of Use, paragraph 6).",
        "The requester asks; the head of the person's department gives permission; the Communications Manager gives "
        "written approval (the Administrative Lieutenant for an investigative profile); the requester confirms the "
        "access really changed.",
    ),
    "content_removal": (
        "Removing a comment or post that falls into one of the policy's removal categories, with a screenshot kept "
        "first.",
        "A social media manager of the account files the removal record with the screenshot, which is e-mailed to "
        "the Communications Manager; only then do they delete the content and confirm it.",
    ),
    "removal_appeal": (
        "A member of the public asks the City to reconsider a removed comment.",
        "It comes in through the public web form, or staff enter a letter or e-mail; the Communications Manager "
        "upholds or reinstates in writing; a manager of the account restores a reinstated comment.",
    ),
    "legality_dispute": (
        "A member of the public disputes the legality of a portion of the policy.",
        "The City acknowledges it at once; the City Attorney is consulted (the advice and recommendation are "
        "privileged); the Communications Manager answers in writing and follows up an amendment if one is advised.",
    ),
}

# The words staff meet on these pages, in the order they meet them.
GLOSSARY = (
    ("Request", "One case of a procedure: a new account asked for, a removal, an appeal. It has a number (#12)."),
    (
        "Task",
        "A step of a request that waits for a person: an approval, a confirmation, a written response. "
        "Your inbox lists the tasks assigned to you and those you may take.",
    ),
    (
        "Take (claim) a task",
        "Mark a task as yours so colleagues who could do it see you are working on it. Give it back if you cannot "
        "finish it.",
    ),
    ("Who", "The role a task is for (the BPMN diagram's lane): only someone holding that role can complete it."),
    (
        "Written decision",
        "Every approval, refusal or return is recorded with who made it, when, and the words they wrote; nothing "
        "submitted is ever edited.",
    ),
    ("Return", "Send a request back to whoever made it, to change and resubmit it."),
    (
        "Deadline in business days",
        "Deadlines count the City's working days: weekends and City holidays are not counted. A reminder goes out "
        "before a deadline, and an overdue task is escalated.",
    ),
    (
        "Incident",
        "A step of a diagram failed (for example a letter that could not be composed). Nothing is lost: the request "
        "is held at that step until an administrator retries it or moves it on.",
    ),
    (
        "Classification",
        "How the Minnesota Government Data Practices Act classifies a record: public, private, confidential, "
        "nonpublic, protected nonpublic; the City Attorney's advice is privileged. It decides who may read what.",
    ),
    (
        "Privileged",
        "The City Attorney's advice and recommendation on a dispute: only the City Attorney and the Communications "
        "Manager read them; others see that they are withheld.",
    ),
    ("Registry", "The City's list of its social media accounts, their managers and the policy's marks."),
    (
        "Investigative profile",
        "A Police Department profile for investigations: approved by the Administrative Lieutenant, visible only "
        "to police roles, its credentials kept encrypted and every view logged.",
    ),
    (
        "Letter by post",
        "An appeal or dispute that came on paper, with a postal address and no e-mail, is answered on paper: the "
        'letter is made as a PDF for a window envelope and a "Mail the letter" task asks someone to print, sign '
        "and post it. Completing that task records the date mailed, which the deadlines count from.",
    ),
    (
        "Your password",
        'Your name at the top of every page opens "Change your password". Forgot it? "Forgot your password?" '
        "on the login page mails you a link that works once, within 30 minutes. Wrong passwords lock no one out; "
        "after several, you wait a little before trying again, or an administrator clears the wait.",
    ),
)


@help_pages.before_request
@login_required
def require_login():
    """The help page is for logged-in staff (the public pages link to the public notice instead)."""


@help_pages.get("")
def index():
    """What each procedure is for and who acts, the glossary, and who holds each role today."""
    session = get_session()
    holders = staff.holders_of_roles(session)
    contacts = [(role_name(role), holders.get(role, [])) for role in GRANTABLE_ROLES]
    return render_template(
        "help/index.html",
        procedures=[(procedures.get(key).name, purpose, who) for key, (purpose, who) in PURPOSES.items()],
        glossary=GLOSSARY,
        contacts=contacts,
        heads=staff.department_heads(session),
    )
