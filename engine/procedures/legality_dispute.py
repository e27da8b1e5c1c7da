"""Procedure 5, a dispute of the policy's legality (Rules of Use, last paragraph).

"A member of the public who disputes the legality of any portion of this policy may dispute the
particular portion in writing. The City should acknowledge the claim promptly and, upon consultation
of the City Attorney, respond to the claim concerning legality of the policy portion as soon as
reasonably possible under the circumstances." The attorney's advice is privileged: only the City
Attorney and the Communications Manager read it, and no letter carries it.
"""

from __future__ import annotations

from engine.errors import Invalid
from engine.mail import letters
from engine.mail.outbox import Letter
from engine.procedures import Described, Procedure, Submission, register
from engine.procedures.common import (
    BY_EMAIL,
    BY_POST,
    MAIL_LETTER_FORM,
    PUBLIC_TEXT_LIMIT,
    local_date,
    mail_letter_fields,
    mailed,
    received_via_field,
    reply_fields,
    validate_reply,
)
from engine.procedures.fields import EMAIL, STRING, TEXT, Field, labelled_choice, validate

RECOMMENDATIONS = (("no_change", "No change to the policy"), ("amend", "Amend the policy"))
ACKNOWLEDGEMENT_LETTER = "acknowledgement_to_disputant"
RESPONSE_LETTER = "response_to_disputant"


def _to_disputant(record: dict, subject: str, body: str) -> list[Letter]:
    """A letter to whoever disputed the policy: by e-mail, or to the postal address of a letter without one."""
    if record.get("reply_by") == BY_POST:
        address = f"{record['disputant_name']}\n{record['disputant_address']}"
        return [Letter(recipients=(), subject=subject, body=body, postal_address=address)]
    return [Letter(recipients=(record["disputant_email"],), subject=subject, body=body)]


class LegalityDispute(Procedure):
    """A written dispute: acknowledged at once, the City Attorney consulted, answered in writing."""

    key = "legality_dispute"
    name = "Dispute of the policy's legality"
    letters = frozenset({ACKNOWLEDGEMENT_LETTER, RESPONSE_LETTER})
    # "The City should acknowledge the claim promptly": sent at once, and escalated if not sent by its deadline.
    letter_deadlines = {ACKNOWLEDGEMENT_LETTER: "dispute_acknowledgement"}
    privileged_fields = frozenset({"advice"})
    public_kind = "dispute"
    filer_name_field = "disputant_name"
    filer_email_field = "disputant_email"
    acknowledgement_letter = ACKNOWLEDGEMENT_LETTER
    response_letter = RESPONSE_LETTER
    letter_forms = {"dispute_response": RESPONSE_LETTER}

    def start_fields(self, session, actor=None):
        """Who disputes, which portion of the policy, on what basis, and how it came in."""
        return [
            Field("disputant_name", STRING, "Disputant's name"),
            *reply_fields("Disputant", "disputant_email", "disputant_address"),
            Field(
                "policy_section",
                STRING,
                "The portion of the policy disputed",
                max_length=500,
                hint='e.g. "Rules of Use, the removal categories"',
            ),
            Field("basis", TEXT, "The basis of the dispute", max_length=20000),
            received_via_field(),
        ]

    def public_fields(self, session):
        """The dispute as a member of the public writes it: which portion of the policy, and why."""
        return [
            Field("disputant_name", STRING, "Your name"),
            Field(
                "disputant_email",
                EMAIL,
                "Your e-mail address",
                max_length=254,
                hint="The City's acknowledgement, with your tracking code, and its written response are sent here.",
            ),
            Field(
                "policy_section",
                STRING,
                "The portion of the policy you dispute",
                max_length=500,
                hint='For example "Rules of Use, the removal categories".',
            ),
            Field("basis", TEXT, "Why you believe that portion is not lawful", max_length=PUBLIC_TEXT_LIMIT),
        ]

    def task_fields(self, session, form_key, record):
        """The attorney's consultation, the City's response, and the amendment follow-up."""
        if form_key == "attorney_consultation":
            return [
                Field("advice", TEXT, "Advice (attorney-client privileged; never sent or published)", max_length=20000),
                labelled_choice("recommendation", "Recommendation", RECOMMENDATIONS),
            ]
        if form_key == "dispute_response":
            return [
                Field(
                    "response_text",
                    TEXT,
                    "The body of the City's written response",
                    max_length=20000,
                    hint=(
                        'Write the response itself. The City\'s letter adds the greeting ("Dear …"), names the '
                        "dispute and the portion of the policy, and adds the reference and the signature: preview "
                        "the letter to read it whole before it is sent."
                    ),
                )
            ]
        if form_key == MAIL_LETTER_FORM:
            return mail_letter_fields()
        if form_key == "policy_amendment":
            return [
                Field(
                    "amendment_summary",
                    TEXT,
                    "The amendment: what changes, and how it goes to the City Council",
                    max_length=20000,
                )
            ]
        raise Invalid(f'Unknown form "{form_key}".', {"form_key": ["Unknown form."]})

    def form_keys(self):
        """The forms of this procedure's diagram."""
        return frozenset({"attorney_consultation", "dispute_response", "policy_amendment", MAIL_LETTER_FORM})

    def validate_start(self, session, actor, data):
        """Clean the dispute as written, with how the City replies (e-mail, or post)."""
        return validate_reply(validate(self.start_fields(session, actor), data), "disputant_email", "disputant_address")

    def describe(self, record):
        """'Dispute by Jo Public of "Rules of Use"'."""
        return Described(
            title=f'Dispute by {record["disputant_name"]} of "{record["policy_section"]}"', department_code=None
        )

    def submit(self, session, actor, instance, task, data):
        """The advice (kept out of the history's words), the response, or the amendment."""
        clean = validate(self.task_fields(session, task.form_key, instance.data), data)
        if task.form_key == "attorney_consultation":
            # The advice is stored only in the record, where privileged fields are shown to those who may read
            # them; the history says the attorney was consulted and what they recommended, not what they advised.
            return Submission(clean, record_updates=clean, decision=clean["recommendation"])
        if task.form_key == "dispute_response":
            letters.check_body(clean["response_text"], "response_text", instance.data["disputant_name"])
            # The diagram's "How to reply?" reads reply_by; a request filed before there was a postal path has none.
            route = {"reply_by": instance.data.get("reply_by", BY_EMAIL)}
            return Submission(
                {**clean, **route}, record_updates=clean, decision="responded", comment=clean["response_text"]
            )
        if task.form_key == MAIL_LETTER_FORM:
            return mailed(session, instance, clean)
        return Submission(
            clean, record_updates=clean, decision="amendment_proposed", comment=clean["amendment_summary"]
        )

    def compose_letter(self, session, instance, letter):
        """The acknowledgement, sent at once, and the City's response."""
        return self.compose_letter_from(session, instance, letter, instance.data)

    def compose_letter_from(self, session, instance, letter, record):
        """The acknowledgement (with a public filing's tracking code and copy) and the response, from the record."""
        received = local_date(session, instance.started_at)
        reference = f"dispute {instance.id}"
        if letter == ACKNOWLEDGEMENT_LETTER:
            body = (
                f"The City of West St. Paul acknowledges your written dispute, received {received}, of the "
                f"legality of this portion of its Social Media Policy: {record['policy_section']}.\n\n"
                "The City will consult the City Attorney and respond to you in writing as soon as reasonably "
                "possible."
            )
            enclosed = letters.enclosure()
            if enclosed:
                body = f"{body}\n\n{enclosed}"
            text = letters.compose(session, to_name=record["disputant_name"], body=body, reference=reference)
            return _to_disputant(record, "We received your dispute of the Social Media Policy", text)
        if letter == RESPONSE_LETTER:
            body = (
                f"In response to your dispute, received {received}, of the legality of this portion of the "
                f"City's Social Media Policy: {record['policy_section']}.\n\n{record['response_text'].strip()}"
            )
            text = letters.compose(session, to_name=record["disputant_name"], body=body, reference=reference)
            return _to_disputant(record, "The City's response to your dispute of the Social Media Policy", text)
        return super().compose_letter_from(session, instance, letter, record)


register(LegalityDispute())
