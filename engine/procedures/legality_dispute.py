"""Procedure 5, a dispute of the policy's legality (Rules of Use, last paragraph).

"A member of the public who disputes the legality of any portion of this policy may dispute the
particular portion in writing. The City should acknowledge the claim promptly and, upon consultation
of the City Attorney, respond to the claim concerning legality of the policy portion as soon as
reasonably possible under the circumstances." The attorney's advice is privileged: only the City
Attorney and the Communications Manager read it, and no letter carries it.
"""

from __future__ import annotations

from engine.errors import Invalid
from engine.mail.outbox import Letter
from engine.procedures import Described, Procedure, Submission, register
from engine.procedures.common import PUBLIC_TEXT_LIMIT, city_signature, local_date, received_via_field
from engine.procedures.fields import EMAIL, STRING, TEXT, Field, labelled_choice, validate

RECOMMENDATIONS = (("no_change", "No change to the policy"), ("amend", "Amend the policy"))
ACKNOWLEDGEMENT_LETTER = "acknowledgement_to_disputant"
RESPONSE_LETTER = "response_to_disputant"


def _to_disputant(record: dict, subject: str, body: str) -> list[Letter]:
    """A letter to whoever disputed the policy, at the address they gave."""
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

    def start_fields(self, session, actor=None):
        """Who disputes, which portion of the policy, on what basis, and how it came in."""
        return [
            Field("disputant_name", STRING, "Disputant's name"),
            Field(
                "disputant_email",
                EMAIL,
                "Disputant's e-mail address (the acknowledgement and response go there)",
                max_length=254,
            ),
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
                hint="The receipt, the City's acknowledgement and its written response are sent here.",
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
                    "The City's written response to the disputant (e-mailed as written)",
                    max_length=20000,
                )
            ]
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
        return frozenset({"attorney_consultation", "dispute_response", "policy_amendment"})

    def validate_start(self, session, actor, data):
        """Clean the dispute as written."""
        return validate(self.start_fields(session, actor), data)

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
            return Submission(clean, record_updates=clean, decision="responded", comment=clean["response_text"])
        return Submission(
            clean, record_updates=clean, decision="amendment_proposed", comment=clean["amendment_summary"]
        )

    def compose_letter(self, session, instance, letter):
        """The acknowledgement, sent at once, and the City's response."""
        record = instance.data
        received = local_date(session, instance.started_at)
        if letter == ACKNOWLEDGEMENT_LETTER:
            body = (
                f"Dear {record['disputant_name']},\n\n"
                f"The City of West St. Paul acknowledges your written dispute, received {received}, of the "
                f"legality of this portion of its Social Media Policy: {record['policy_section']}.\n\n"
                "The City will consult the City Attorney and respond to you in writing as soon as reasonably "
                f"possible.\n\nReference: dispute {instance.id}\n\n{city_signature(session)}\n"
            )
            return _to_disputant(record, "We received your dispute of the Social Media Policy", body)
        if letter == RESPONSE_LETTER:
            body = (
                f"Dear {record['disputant_name']},\n\n"
                f"In response to your dispute, received {received}, of the legality of this portion of the "
                f"City's Social Media Policy: {record['policy_section']}.\n\n{record['response_text']}\n\n"
                f"Reference: dispute {instance.id}\n\n{city_signature(session)}\n"
            )
            return _to_disputant(record, "The City's response to your dispute of the Social Media Policy", body)
        return super().compose_letter(session, instance, letter)


register(LegalityDispute())
