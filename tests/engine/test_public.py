"""The public side in the engine: members of the public file appeals and disputes without a login, follow them
by a tracking code only they hold, and see nothing but the public facts; on both databases."""

from __future__ import annotations

import hashlib
import json
import random
import re
import uuid

import pytest
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import func, inspect, select, text

from engine.db.connection import make_engine, make_sessionmaker
from engine.db.migrate import alembic_config, upgrade
from engine.db.models import AuditEvent, Base, OutboxMail, ProcessInstance, PublicNotice, PublicRequest
from engine.demo import create_departments
from engine.errors import Invalid, NotAllowed, NotFound
from engine.mail import outbox
from engine.people import users
from engine.records import attachments
from engine.requests import authz, inbox, public, services
from engine.settings import Settings
from engine.versions import shipped
from tests.engine.test_attachments import LIMIT
from tests.engine.test_content_removal import removal
from tests.helpers import SECRET, START
from tests.procedures import act, png_bytes

# Crockford's base32 (no I, L, O, U), five groups of four.
CODE_RE = re.compile(r"^[0-9A-HJKMNP-TV-Z]{4}(?:-[0-9A-HJKMNP-TV-Z]{4}){4}$")
RESPONSE = "Your comment was about the library's hours, a City service; the City has reinstated it."
INTERNAL = "INTERNAL-COMMENT: restored by hand, the platform lost the original timestamp."


def appeal(account_id, **changes):
    """An appeal as a member of the public fills in the form."""
    return {
        "appellant_name": "Jo Public",
        "appellant_email": "jo.public@example.net",
        "account": account_id,
        "comment_text": "The library hours changed again?",
        "explanation": "My comment was about City services.",
        **changes,
    }


def dispute(**changes):
    """A dispute as a member of the public fills in the form."""
    return {
        "disputant_name": "Sam Citizen",
        "disputant_email": "sam.citizen@example.net",
        "policy_section": "Rules of Use, the removal categories",
        "basis": "They restrict protected speech.",
        **changes,
    }


def filing(city, kind, **changes):
    """The filing of that kind, with changes."""
    return appeal(city.facebook, **changes) if kind == "appeal" else dispute(**changes)


def submit(session, kind, data) -> public.Filed:
    """File through the public side and commit, as the public page does."""
    filed = public.submit(session, kind, data)
    session.commit()
    return filed


def row_counts(session) -> dict[str, int]:
    """How many requests, public filings, letters and audit events there are."""
    return {
        model.__tablename__: session.scalar(select(func.count()).select_from(model))
        for model in (ProcessInstance, PublicRequest, OutboxMail, AuditEvent)
    }


def status(session, code) -> public.Status:
    """What the status page of this code shows now."""
    session.commit()  # a fresh snapshot: what a new request would read
    return public.status_of(session, public.find(session, code))


def near_codes(code: str, count: int = 1000) -> list[str]:
    """`count` distinct codes one slip away from `code`: every single-character substitution, every swap of
    neighbours, then random codes; none of them is `code` once normalised."""
    raw = public.normalise(code)
    seen, near = {raw}, []

    def add(candidate):
        if candidate not in seen:
            seen.add(candidate)
            near.append(candidate)

    for i in range(len(raw)):
        for character in public.ALPHABET:
            add(raw[:i] + character + raw[i + 1 :])
    for i in range(len(raw) - 1):
        add(raw[:i] + raw[i + 1] + raw[i] + raw[i + 2 :])
    rng = random.Random(raw)
    while len(near) < count:
        add("".join(rng.choice(public.ALPHABET) for _ in range(public.CODE_LENGTH)))
    codes = [public.format_code(candidate) for candidate in near[:count]]
    assert len(set(codes)) == count and all(public.normalise(c) not in (None, raw) for c in codes)
    return codes


# ---- filing ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "key", "filer"),
    [("appeal", "removal_appeal", "Jo Public"), ("dispute", "legality_dispute", "Sam Citizen")],
)
def test_a_public_filing_has_no_staff_starter_and_its_history_names_the_member_of_the_public(
    session, city, kind, key, filer
):
    filed = submit(session, kind, filing(city, kind))
    instance = session.get(ProcessInstance, filed.instance.id)
    assert (filed.kind, instance.process_key, instance.status) == (kind, key, "running")
    assert (instance.started_by_id, instance.started_by) == (None, None)
    assert instance.data["received_via"] == "web"
    started = services.history_of(session, instance)[0]
    assert (started.action, started.actor_id, started.actor, started.role, started.actor_name) == (
        "started",
        None,
        "public",
        "public",
        filer,
    )


@pytest.mark.parametrize("kind", ["appeal", "dispute"])
def test_the_tracking_code_is_twenty_crockford_characters_and_only_its_sha256_is_kept(session, city, kind):
    filed = submit(session, kind, filing(city, kind))
    other = submit(session, kind, filing(city, kind))
    assert CODE_RE.match(filed.code) and CODE_RE.match(other.code)
    assert filed.code != other.code
    raw = filed.code.replace("-", "")
    stored = session.scalar(select(PublicRequest).where(PublicRequest.instance_id == filed.instance.id))
    assert (stored.kind, stored.code_hash, stored.received_at) == (
        kind,
        hashlib.sha256(raw.encode()).hexdigest(),
        filed.instance.started_at,
    )
    # The code is in the receipt e-mailed to the filer, and in no table the City keeps about the request.
    for table in ("public_request", "process_instance", "audit_event", "task"):
        rows = repr(session.execute(select(Base.metadata.tables[table])).all()).upper()
        assert raw not in rows and filed.code not in rows, table
    # A dispute's acknowledgement, sent at once, is its receipt (one letter, not two).
    first = public.RECEIPT_LETTER if kind == "appeal" else "acknowledgement_to_disputant"
    [receipt] = session.scalars(
        select(OutboxMail).where(OutboxMail.instance_id == filed.instance.id, OutboxMail.letter == first)
    )
    assert filed.code in receipt.body


@pytest.mark.parametrize("kind", ["appeal", "dispute"])
def test_the_longest_filing_within_every_limit_is_accepted(session, city, kind):
    longest = {
        "appeal": appeal(
            city.facebook,
            appellant_name="N" * 200,
            appellant_email="a" * 242 + "@example.org",
            comment_text="c" * 10000,
            explanation="e" * 10000,
        ),
        "dispute": dispute(
            disputant_name="N" * 200,
            disputant_email="a" * 242 + "@example.org",
            policy_section="p" * 500,
            basis="b" * 10000,
        ),
    }[kind]
    filed = submit(session, kind, longest)
    assert {name: len(str(value)) for name, value in filed.instance.data.items() if name in longest} == {
        name: len(str(value)) for name, value in longest.items()
    }
    # The title (name and policy section) is cut to the column's 300 characters; the record keeps every word.
    session.expire_all()
    title = session.get(ProcessInstance, filed.instance.id).title
    assert len(title) <= 300 and title.startswith(("Appeal by NNN", "Dispute by NNN"))
    assert title.endswith("…") == (kind == "dispute")


# ---- finding a request by its code -----------------------------------------------------------------


def test_find_takes_the_code_as_people_type_it(session, city, monkeypatch):
    filed = submit(session, "appeal", appeal(city.facebook))
    code = filed.code
    for typed in (code, code.lower(), code.replace("-", ""), code.replace("-", " "), f"  {code.lower()}  "):
        assert public.find(session, typed).instance_id == filed.instance.id, typed
    # A code with a zero and a one, read from a letter as the letters O, I and L.
    monkeypatch.setattr(public, "new_code", lambda: "K7QM-4XPA-9RT0-2WEH-5N1C")
    misread = submit(session, "dispute", dispute())
    for typed in ("K7QM-4XPA-9RTO-2WEH-5NIC", "k7qm4xpa9rto2weh5nlc", "K7QM 4XPA 9RTo 2WEH 5NlC"):
        assert public.find(session, typed).instance_id == misread.instance.id, typed


def test_a_thousand_codes_near_a_real_one_find_nothing(session, city):
    filed = submit(session, "appeal", appeal(city.facebook))
    codes = near_codes(filed.code)
    messages = set()
    for code in codes:
        with pytest.raises(NotFound) as refused:
            public.find(session, code)
        messages.add(refused.value.message)
    assert messages == {"No request has this tracking code. Check it against your receipt."}
    assert public.find(session, filed.code).instance_id == filed.instance.id


def test_a_malformed_code_is_not_found_with_the_same_message_as_an_unknown_one(session, city):
    filed = submit(session, "appeal", appeal(city.facebook))
    with pytest.raises(NotFound) as unknown:
        public.find(session, near_codes(filed.code, 1)[0])
    code = filed.code
    malformed = [
        code[:-1],
        code.replace("-", "")[:19],
        code + "0",
        code.replace("-", "") + "00",
        "",
        "U" + code[1:],
        code[:-1] + "!",
        code[:-1] + "é",
        "<script>",
        "' OR 1=1 --",
        code + "\x00",
        "A" * 10_000,
        "-" * 10_000,
        None,
        12345,
        1.5,
        [code],
        {"code": code},
        code.encode(),
    ]
    for typed in malformed:
        with pytest.raises(NotFound) as refused:
            public.find(session, typed)
        assert refused.value.message == unknown.value.message, repr(typed)[:40]


# ---- what the public may see -----------------------------------------------------------------------


def assert_shows_none_of(statuses, secrets):
    """Neither a status nor its JSON holds any of the secrets."""
    for shown in statuses:
        for words in (repr(shown), json.dumps(shown.as_json())):
            leaked = [secret for secret in secrets if secret in words]
            assert leaked == [], words[:300]


def test_an_appeal_is_received_then_acknowledged_once_claimed_then_responded_with_the_letter_as_sent(
    session, city, make_user
):
    manager = make_user(
        "mquillfeather", department="communications", roles=["communications_manager"], name="Marguerite Quillfeather"
    )
    filed = submit(session, "appeal", appeal(city.facebook))
    received = status(session, filed.code)
    assert (received.kind, received.status, received.received_at) == ("appeal", "received", filed.instance.started_at)
    assert (received.acknowledged_at, received.responded_at, received.response) == (None, None, None)

    [review] = services.open_tasks_of(session, filed.instance)
    services.claim_task(session, manager, review.id)
    session.commit()
    claimed_at = session.scalar(select(AuditEvent.at).where(AuditEvent.action == "claimed"))
    acknowledged = status(session, filed.code)
    assert (acknowledged.status, acknowledged.acknowledged_at, acknowledged.responded_at, acknowledged.response) == (
        "acknowledged",
        claimed_at,
        None,
        None,
    )

    act(session, manager, filed.instance, "appeal_review", {"decision": "reinstate", "response_text": RESPONSE})
    letter = session.scalar(
        select(OutboxMail).where(
            OutboxMail.instance_id == filed.instance.id, OutboxMail.letter == "response_to_appellant"
        )
    )
    responded = status(session, filed.code)
    assert (responded.status, responded.acknowledged_at, responded.responded_at, responded.response) == (
        "responded",
        claimed_at,
        letter.created_at,
        letter.body,
    )
    assert RESPONSE in responded.response and "Dear Jo Public" in responded.response
    assert responded.as_json() == {
        "kind": "appeal",
        "status": "responded",
        "received_at": f"{filed.instance.started_at.isoformat()}+00:00",
        "acknowledged_at": f"{claimed_at.isoformat()}+00:00",
        "responded_at": f"{letter.created_at.isoformat()}+00:00",
        "response": letter.body,
    }

    act(
        session,
        city.moderator,
        filed.instance,
        "restore_content",
        {"restored": True, "restored_url": "https://facebook.com/cityofwsp/posts/1?c=2", "comment": INTERNAL},
    )
    assert status(session, filed.code) == responded
    # The history has the staff and their comment; the status page has neither.
    history = services.history_of(session, filed.instance)
    assert {"Marguerite Quillfeather", "Moderator"} <= {e.actor_name for e in history}
    assert INTERNAL in [e.comment for e in history]
    assert_shows_none_of(
        [received, acknowledged, responded],
        ["Marguerite Quillfeather", "mquillfeather", "Moderator", "moderator", INTERNAL, "restored_url"],
    )


def test_a_dispute_is_acknowledged_at_once_and_its_status_never_shows_the_advice_or_who_worked_on_it(
    session, city, make_user
):
    attorney = make_user(
        "tbrightwater", department="administration", roles=["city_attorney"], name="Theodora Brightwater"
    )
    manager = make_user(
        "mquillfeather", department="communications", roles=["communications_manager"], name="Marguerite Quillfeather"
    )
    advice = f"PRIVILEGED-ADVICE-{uuid.uuid4().hex}"
    amendment = f"INTERNAL-AMENDMENT-{uuid.uuid4().hex}: narrow the spam category."
    filed = submit(session, "dispute", dispute())
    acknowledgement = session.scalar(select(OutboxMail).where(OutboxMail.letter == "acknowledgement_to_disputant"))
    acknowledged = status(session, filed.code)
    assert (acknowledged.kind, acknowledged.status, acknowledged.received_at) == (
        "dispute",
        "acknowledged",
        filed.instance.started_at,
    )
    assert (acknowledged.acknowledged_at, acknowledged.responded_at, acknowledged.response) == (
        acknowledgement.created_at,
        None,
        None,
    )

    act(session, attorney, filed.instance, "attorney_consultation", {"advice": advice, "recommendation": "amend"})
    consulted = status(session, filed.code)
    assert consulted == acknowledged

    act(session, manager, filed.instance, "dispute_response", {"response_text": RESPONSE})
    letter = session.scalar(select(OutboxMail).where(OutboxMail.letter == "response_to_disputant"))
    responded = status(session, filed.code)
    assert (responded.status, responded.acknowledged_at, responded.responded_at, responded.response) == (
        "responded",
        acknowledgement.created_at,
        letter.created_at,
        letter.body,
    )
    assert RESPONSE in responded.response and "Dear Sam Citizen" in responded.response

    act(session, manager, filed.instance, "policy_amendment", {"amendment_summary": amendment})
    assert status(session, filed.code) == responded
    session.expire_all()
    instance = session.get(ProcessInstance, filed.instance.id)
    assert (instance.status, instance.data["advice"]) == ("completed", advice)  # kept, for those who may read it
    assert {"Theodora Brightwater", "Marguerite Quillfeather"} <= {
        e.actor_name for e in services.history_of(session, instance)
    }
    assert_shows_none_of(
        [acknowledged, consulted, responded],
        [
            advice,
            "PRIVILEGED",
            "Theodora Brightwater",
            "tbrightwater",
            "Marguerite Quillfeather",
            "mquillfeather",
            amendment,
            "INTERNAL",
            "amend",
        ],
    )


@pytest.mark.parametrize("kind", ["appeal", "dispute"])
def test_the_receipt_reaches_the_filer_with_the_code_the_status_link_and_a_copy_of_what_was_sent(
    session, sessions, city, mail_settings, smtp_server, kind
):
    filed = submit(session, kind, filing(city, kind))
    sent = outbox.deliver_due(sessions, mail_settings).sent
    address, words = (
        ("jo.public@example.net", "appeal of a removed comment")
        if kind == "appeal"
        else ("sam.citizen@example.net", "dispute of the City's Social Media Policy")
    )
    # One letter: a dispute's acknowledgement, which the policy requires at once, carries the receipt.
    assert sent == 1
    assert {m["X-Envelope-To"] for m in smtp_server.messages} == {address}
    subject = f"Receipt: your {words}" if kind == "appeal" else "We received your dispute of the Social Media Policy"
    [receipt] = smtp_server.to(address)
    assert receipt["Subject"] == subject
    assert receipt["To"] == address
    body = receipt.get_body(("plain",)).get_content()
    name = "Jo Public" if kind == "appeal" else "Sam Citizen"
    assert f"Dear {name}," in body
    assert f"Your tracking code: {filed.code}" in body
    assert f"{mail_settings.base_url}/public/requests/{filed.code}" in body
    copied = (
        ["Facebook: City of West St. Paul", "The library hours changed again?", "My comment was about City services."]
        if kind == "appeal"
        else ["Rules of Use, the removal categories", "They restrict protected speech."]
    )
    what_was_sent = body.split("What you sent:", 1)[1]
    assert [text for text in copied if text not in what_was_sent] == []
    assert body.count("Dear ") == 1
    row = session.scalar(select(OutboxMail).where(OutboxMail.instance_id == filed.instance.id))
    session.refresh(row)
    assert (row.status, row.recipients, row.instance_id) == ("sent", [address], filed.instance.id)


# ---- refusals --------------------------------------------------------------------------------------

LONG_EMAIL = "a" * 243 + "@example.org"  # 255 characters

BAD_FILINGS = [
    ("appeal", {"appellant_name": ""}, "appellant_name", "required"),
    ("appeal", {"appellant_email": "   "}, "appellant_email", "required"),
    ("appeal", {"comment_text": ""}, "comment_text", "required"),
    ("appeal", {"explanation": " \n "}, "explanation", "required"),
    ("appeal", {"account": None}, "account", "required"),
    ("dispute", {"disputant_name": ""}, "disputant_name", "required"),
    ("dispute", {"disputant_email": ""}, "disputant_email", "required"),
    ("dispute", {"policy_section": "  "}, "policy_section", "required"),
    ("dispute", {"basis": ""}, "basis", "required"),
    ("appeal", {"appellant_name": "n" * 201}, "appellant_name", "At most 200 characters"),
    ("dispute", {"disputant_name": "n" * 201}, "disputant_name", "At most 200 characters"),
    ("appeal", {"appellant_email": LONG_EMAIL}, "appellant_email", "At most 254 characters"),
    ("dispute", {"disputant_email": LONG_EMAIL}, "disputant_email", "At most 254 characters"),
    ("appeal", {"comment_text": "c" * 10001}, "comment_text", "At most 10000 characters"),
    ("appeal", {"explanation": "e" * 10001}, "explanation", "At most 10000 characters"),
    ("dispute", {"basis": "b" * 10001}, "basis", "At most 10000 characters"),
    ("dispute", {"policy_section": "p" * 501}, "policy_section", "At most 500 characters"),
    ("appeal", {"appellant_email": "jo.public@"}, "appellant_email", "Must be an e-mail address"),
    ("dispute", {"disputant_email": "Sam <sam@example.net>"}, "disputant_email", "Must be an e-mail address"),
    ("appeal", {"nickname": "Jo"}, "nickname", "Unknown field"),
    ("dispute", {"started_by_id": 1}, "started_by_id", "Unknown field"),
    ("appeal", {"received_via": "mail"}, "received_via", '"web"'),
    ("dispute", {"received_via": "email"}, "received_via", '"web"'),
    ("appeal", {"appellant_name": "Jo\x00Public"}, "appellant_name", "NUL"),
    ("dispute", {"basis": "Protected speech\x00"}, "basis", "NUL"),
    ("appeal", {"removal_id": "twelve"}, "removal_id", "record number"),
]


@pytest.mark.parametrize(
    ("kind", "changes", "field", "message"),
    BAD_FILINGS,
    ids=[f"{kind}-{field}-{message}" for kind, _, field, message in BAD_FILINGS],
)
def test_a_bad_filing_is_refused_naming_the_field_and_creates_nothing(session, city, kind, changes, field, message):
    before = row_counts(session)
    with pytest.raises(Invalid) as refused:
        public.submit(session, kind, filing(city, kind, **changes))
    session.rollback()
    assert list(refused.value.fields) == [field]
    assert message in " ".join(refused.value.fields[field])
    assert row_counts(session) == before


@pytest.mark.parametrize("account", ["profile", "missing"])
def test_an_appeal_about_an_investigative_profile_or_no_account_is_refused(session, city, account):
    before = row_counts(session)
    account_id = city.profile if account == "profile" else 999_999
    with pytest.raises(Invalid) as refused:
        public.submit(session, "appeal", appeal(account_id))
    session.rollback()
    assert list(refused.value.fields) == ["account"]
    assert refused.value.fields["account"] == [
        f'{account_id} is not one of the choices for "The City account your comment was on".'
    ]
    assert row_counts(session) == before


@pytest.mark.parametrize(
    "data", [[appeal(1)], "appellant_name=Jo", None, 5, b"{}"], ids=["list", "string", "none", "number", "bytes"]
)
def test_filing_data_that_is_not_an_object_is_refused_naming_data(session, city, data):
    before = row_counts(session)
    with pytest.raises(Invalid) as refused:
        public.submit(session, "appeal", data)
    session.rollback()
    assert list(refused.value.fields) == ["data"]
    assert row_counts(session) == before


def test_a_removal_number_not_on_the_account_gets_one_answer_whether_or_not_it_exists(session, city):
    def file_removal(who, account_id):
        upload = attachments.store(session, who, "comment.png", png_bytes(), limit=LIMIT)
        return services.start_instance(session, who, "content_removal", removal(account_id, upload.id))

    on_facebook = file_removal(city.moderator, city.facebook)
    on_police_x = file_removal(city.officer, city.police_x)
    on_profile = file_removal(city.officer, city.profile)  # investigative: restricted
    not_a_removal = services.start_instance(session, city.requester, "new_account_request", START)
    session.commit()
    missing = max(on_facebook.id, on_police_x.id, on_profile.id, not_a_removal.id) + 1000
    before = row_counts(session)
    answers = set()
    for number in (on_police_x.id, on_profile.id, not_a_removal.id, missing):
        with pytest.raises(Invalid) as refused:
            public.submit(session, "appeal", appeal(city.facebook, removal_id=number))
        session.rollback()
        assert list(refused.value.fields) == ["removal_id"]
        [message] = refused.value.fields["removal_id"]
        answers.add(message.replace(str(number), "N"))
    assert answers == {"There is no removal N on Facebook: City of West St. Paul. Leave the number empty if unsure."}
    assert row_counts(session) == before
    filed = submit(session, "appeal", appeal(city.facebook, removal_id=on_facebook.id))
    assert filed.instance.data["removal_id"] == on_facebook.id


def test_an_unknown_kind_of_filing_is_not_found(session, city):
    before = row_counts(session)
    with pytest.raises(NotFound):
        public.submit(session, "complaint", dispute())
    session.rollback()
    assert row_counts(session) == before


# ---- the public actor ------------------------------------------------------------------------------


def test_the_public_actor_sees_no_request_though_public_filings_have_no_starter(session, city):
    submit(session, "appeal", appeal(city.facebook))
    submit(session, "dispute", dispute())
    services.start_instance(session, city.requester, "new_account_request", START)
    session.commit()
    # The trap: the public's filings are exactly the instances whose starter IS NULL.
    assert len(session.scalars(select(ProcessInstance.id).where(ProcessInstance.started_by_id.is_(None))).all()) == 2
    anyone = public.public_actor("x")
    assert session.scalars(select(ProcessInstance.id).where(authz.visible_instances_clause(anyone))).all() == []
    assert services.list_instances(session, anyone) == ([], 0)
    assert [authz.may_view(session, anyone, i) for i in session.scalars(select(ProcessInstance))] == [False] * 3
    assert inbox.list_tasks(session, anyone, "available") == ([], 0)


def test_the_public_actor_has_no_tasks_of_its_own(session, city):
    submit(session, "appeal", appeal(city.facebook))
    submit(session, "dispute", dispute())
    anyone = public.public_actor("x")
    assert inbox.list_tasks(session, anyone, "mine") == ([], 0)
    assert inbox.count_open_tasks(session, anyone) == (0, 0)


# ---- the migration ---------------------------------------------------------------------------------


def test_a_database_at_0004_with_requests_upgrades_keeping_its_rows_and_references(tmp_path):
    url = f"sqlite:///{tmp_path / 'before-0005.sqlite3'}"
    settings = Settings.from_env(instance_path=tmp_path, database_url=url, secret_key=SECRET)
    engine = make_engine(url)
    config = alembic_config(url)
    # The rows are made by today's code, then the schema is taken back to 0004 (later migrations keep rows).
    upgrade(engine)
    make = make_sessionmaker(engine)
    with make(info={"settings": settings}) as session:
        create_departments(session)
        shipped.sync_workflows(session)
        requester, head = (
            users.create_user(
                session,
                username,
                "correct horse battery",
                name=username.title(),
                email=f"{username}@example.org",
                department="parks",
                roles=[],
                head_of=head_of,
            )
            for username, head_of in (("requester", []), ("parks_head", ["parks"]))
        )
        session.commit()
        requester, head = users.actor_for(session, requester), users.actor_for(session, head)
        first = services.start_instance(session, requester, "new_account_request", START)
        second = services.start_instance(session, requester, "new_account_request", START)
        session.commit()
        act(session, head, first, "department_head_review", {"decision": "approve"})
        services.claim_task(session, head, services.open_tasks_of(session, second)[0].id)
        session.commit()
    with engine.connect() as connection:
        raw = connection.connection.driver_connection
        raw.execute("PRAGMA foreign_keys=OFF")  # as engine.db.migrate does: SQLite rebuilds tables
        with connection.begin():
            config.attributes["connection"] = connection
            command.downgrade(config, "0004")
        raw.execute("PRAGMA foreign_keys=ON")
    tables = ("user_account", "process_instance", "task", "audit_event", "outbox_mail")
    # The columns each table had at 0004: later migrations add some (and drop others) the rows are compared without.
    at_0004 = {name: {column["name"] for column in inspect(engine).get_columns(name)} for name in tables}

    def rows():
        with engine.connect() as connection:
            return {
                name: connection.execute(
                    select(*(column for column in table.c if column.name in at_0004[name])).order_by(*table.primary_key)
                ).all()
                for name, table in ((name, Base.metadata.tables[name]) for name in tables)
            }

    before = rows()
    assert [c["nullable"] for c in inspect(engine).get_columns("process_instance") if c["name"] == "started_by_id"] == [
        False
    ]

    upgrade(engine)
    engine.dispose()

    assert rows() == before
    assert len(before["process_instance"]) == 2 and len(before["task"]) >= 3
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA foreign_key_check").all() == []
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert connection.scalar(text("SELECT version_num FROM alembic_version")) == (
            ScriptDirectory.from_config(config).get_current_head()
        )
        references = {
            (row[2], row[3]) for row in connection.exec_driver_sql("PRAGMA foreign_key_list(process_instance)")
        }
        assert {("user_account", "started_by_id"), ("process_model", "model_id")} <= references
        assert ("process_instance", "instance_id") in {
            (row[2], row[3]) for row in connection.exec_driver_sql("PRAGMA foreign_key_list(task)")
        }
    assert [c["nullable"] for c in inspect(engine).get_columns("process_instance") if c["name"] == "started_by_id"] == [
        True
    ]
    with make(info={"settings": settings}) as session:
        filed = submit(session, "dispute", dispute())
        assert session.get(ProcessInstance, filed.instance.id).started_by_id is None
    engine.dispose()


# ---- the public notice -----------------------------------------------------------------------------


def notice_changes(session) -> tuple[int, int]:
    """How many notice versions and "public_notice_changed" audit events there are."""
    return (
        session.scalar(select(func.count()).select_from(PublicNotice)),
        session.scalar(select(func.count()).where(AuditEvent.action == "public_notice_changed")),
    )


@pytest.mark.parametrize("who", ["comms", "records", "requester", "public"])
def test_only_an_administrator_changes_the_public_notice(session, city, who):
    actor = public.public_actor("Jo Public") if who == "public" else getattr(city, who)
    with pytest.raises(NotAllowed):
        public.change_notice(session, actor, "The City's new notice.")
    session.rollback()
    assert notice_changes(session) == (0, 0)
    assert public.notice_in_force(session).body == public.DEFAULT_NOTICE


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("", "Write the notice's text"),
        (" \r\n\t ", "Write the notice's text"),
        ("x" * 20001, "At most 20000 characters"),
        (public.DEFAULT_NOTICE, "same as the notice in force"),
        ("\r\n" + public.DEFAULT_NOTICE.replace("\n", "\r\n") + "  \r\n", "same as the notice in force"),
        ("Notice\x00", "NUL"),
        (None, "text"),
        (["a notice"], "text"),
    ],
    ids=["empty", "blank", "too long", "unchanged", "unchanged but for line ends", "NUL", "none", "list"],
)
def test_an_empty_long_unchanged_or_non_text_notice_is_refused_naming_body(session, city, body, message):
    with pytest.raises(Invalid) as refused:
        public.change_notice(session, city.admin, body)
    session.rollback()
    assert list(refused.value.fields) == ["body"]
    assert message in " ".join(refused.value.fields["body"])
    assert notice_changes(session) == (0, 0)


def test_each_change_of_the_notice_is_a_new_version_with_its_audit_event(session, city):
    first = public.change_notice(session, city.admin, "First text.\r\n\r\n- one\r\n- two  ")
    session.commit()
    assert first.body == "First text.\n\n- one\n- two"
    with pytest.raises(Invalid) as refused:
        public.change_notice(session, city.admin, "First text.\n\n- one\n- two")
    assert "same as the notice in force" in refused.value.fields["body"][0]
    session.rollback()
    second = public.change_notice(session, city.admin, "n" * 20000)
    session.commit()
    third = public.change_notice(session, city.admin, first.body)  # going back to an earlier text is a change
    session.commit()
    assert (public.notice_in_force(session).id, public.notice_in_force(session).body) == (third.id, first.body)
    assert [(v.id, v.body, v.changed_by_id) for v in public.notice_versions(session)] == [
        (third.id, first.body, city.admin.id),
        (second.id, "n" * 20000, city.admin.id),
        (first.id, first.body, city.admin.id),
    ]
    events = session.scalars(
        select(AuditEvent).where(AuditEvent.action == "public_notice_changed").order_by(AuditEvent.id)
    ).all()
    assert [(e.actor, e.actor_id, e.role, e.detail) for e in events] == [
        ("admin", city.admin.id, "admin", {"version": first.id, "characters": len(first.body)}),
        ("admin", city.admin.id, "admin", {"version": second.id, "characters": 20000}),
        ("admin", city.admin.id, "admin", {"version": third.id, "characters": len(first.body)}),
    ]
