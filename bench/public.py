"""The public side through the app: a filing against bare SpiffWorkflow, and the status lookup at 1,000 and 100,000.

(1) A member of the public files a dispute: POST /api/v1/public/disputes with a JSON body through the
real app (Flask test client, rate limits on, each filing from an address of its own so none is refused),
against bare SpiffWorkflow starting the same diagram (workflows/legality_dispute.bpmn) in memory, as
bench.engine's variant (a) does for procedure 1. And the rate limiter alone: DatabaseStorage.incr
(web/ratelimit.py), the counting a limited request does once per limit.

(2) A member of the public follows their request: GET /api/v1/public/requests/<code> among 1,000 and
among 100,000 public requests. Two databases are built alike: the demo's people and accounts, and one
real filing of each kind below, filed through engine.requests.public and worked on through engine.requests.services; one
database is then filled to 1,000 public requests, the other to 100,000, with bulk inserts that copy those
real filings (their instance row, their public_request row with a fresh tracking code, their letters and
their history, the audit chain kept whole). Received, acknowledged and responded requests are looked up
by their codes, the two sizes in interleaved rounds so that machine noise hits both alike.

    .venv/bin/python -m bench.public                 # SQLite: about 90 s on 2 cores
    .venv/bin/python -m bench.public --runs 60       # quicker, noisier
    .venv/bin/python -m bench.public --postgres postgresql+psycopg://postgres@127.0.0.1:5432/test   # 2 min more

The last line is `ratio lookup 100k/1k: X.XX`: the worst, over the three statuses and every database
measured, of median(lookup among 100,000) / median(lookup among 1,000). The goal is below 1.5.
"""

from __future__ import annotations

import dataclasses
import itertools
import random
import statistics
import time
from contextlib import ExitStack, closing
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

from SpiffWorkflow.util.task import TaskState
from sqlalchemy import func, insert, select

from bench import harness
from engine.db.models import Account, AuditEvent, OutboxMail, ProcessInstance, PublicRequest, User
from engine.demo import load_demo
from engine.diagrams import serialization
from engine.people import users
from engine.records import audit
from engine.requests import public, services
from engine.time import clock
from engine.versions import shipped
from web.ratelimit import DatabaseStorage

KEY = "legality_dispute"
SIZES = harness.SIZES  # public requests
CHUNK = 5_000  # copied requests per transaction
LOOKUP_LIMIT = "1000000 per minute"  # the lookups are timed, never refused
LOOKUP_CODES = 200  # distinct requests each lookup series goes round, spread through the database
LOOKUP_ADDRESS = "10.250.0.1"

DISPUTE = {
    "disputant_name": "Sam Citizen",
    "disputant_email": "sam.citizen@example.net",
    "policy_section": "Rules of Use, the removal categories",
    "basis": "The categories restrict speech the First Amendment protects in a limited public forum.",
}
APPEAL = {
    "comment_text": "The library hours changed again? Nobody told us.",
    "explanation": "My comment was about a City service, the library's hours; it is none of the categories.",
}
# What civicflow's start makes of DISPUTE, for bare SpiffWorkflow.
BARE_START = {**DISPUTE, "received_via": "web"}

# The staff's steps: (who, form, data); data None is a claim (the request is taken up, not yet answered).
CONSULT = (
    "attorney",
    "attorney_consultation",
    {"advice": "The categories are content-neutral; they hold.", "recommendation": "no_change"},
)
RESPOND = (
    "comms_manager",
    "dispute_response",
    {"response_text": "The City Attorney reviewed the removal categories; they stay as they are."},
)
CLAIM = ("comms_manager", "appeal_review", None)
UPHOLD = (
    "comms_manager",
    "appeal_review",
    {"decision": "uphold", "response_text": "Your comment was spam; the removal stands."},
)
REINSTATE = ("comms_manager", "appeal_review", {"decision": "reinstate", "response_text": "Your comment is back."})
RESTORE = ("sm_manager", "restore_content", {"restored": True, "restored_url": "https://facebook.com/cityofwsp/1"})

# The kinds of public request in the databases: share of every 100, what was filed, the staff's steps so
# far, and the status a lookup shows.
KINDS = {
    "dispute_waiting_for_attorney": (15, "dispute", [], "acknowledged"),
    "dispute_waiting_for_response": (5, "dispute", [CONSULT], "acknowledged"),
    "dispute_answered": (20, "dispute", [CONSULT, RESPOND], "responded"),
    "appeal_received": (15, "appeal", [], "received"),
    "appeal_taken_up": (5, "appeal", [CLAIM], "acknowledged"),
    "appeal_upheld": (30, "appeal", [UPHOLD], "responded"),
    "appeal_reinstated": (10, "appeal", [REINSTATE, RESTORE], "responded"),
}
# The lookups timed: a status, and the kind of request looked up for it.
MEASURED = {
    "received": "appeal_received",
    "acknowledged": "dispute_waiting_for_attorney",
    "responded": "dispute_answered",
}


@dataclasses.dataclass
class Template:
    """A real public filing to copy: its rows, and the filer's name, address and code to replace in them."""

    kind: str
    status: str
    code: str
    name: str
    email: str
    fields: tuple[str, str]  # the procedure's fields of the filer's name and address
    row: dict
    public: dict
    mails: list[dict]
    events: list[dict]


# ---- one database, built the same way at every size ----------------------------------------------


class Database(harness.Database):
    """A migrated database with the demo's people and accounts, the real filings, and copies up to `size`."""

    def __init__(self, url: str, folder: Path, size: int):
        super().__init__(url, folder, secure_cookies=False)
        self.size = size
        with self.sessions() as session:
            load_demo(session, harness.PASSWORD)
            shipped.sync_workflows(session)
            session.commit()
            self.templates = self._templates(session)
        began = time.perf_counter()
        self.codes = self._fill(size - len(self.templates))
        self.fill_seconds = time.perf_counter() - began
        self.bulk_loaded("process_instance", "audit_event")

    def _templates(self, session) -> dict[str, Template]:
        """One real filing of each kind, filed as the public files and worked on as the staff work."""
        actors = {
            username: users.actor_for(session, session.scalar(select(User).where(User.username == username)))
            for username in ("comms_manager", "attorney", "sm_manager")
        }
        facebook = session.scalar(select(Account.id).where(Account.url == "https://facebook.com/cityofwsp"))
        templates = {}
        for number, (name, (_share, kind, steps, status)) in enumerate(KINDS.items()):
            filer, email = f"Templatefiler {number}", f"templatefiler.{number}@example.net"
            if kind == "dispute":
                data = {**DISPUTE, "disputant_name": filer, "disputant_email": email}
            else:
                data = {**APPEAL, "appellant_name": filer, "appellant_email": email, "account": facebook}
            filed = public.submit(session, kind, data)
            session.commit()
            instance_id = filed.instance.id
            for username, form_key, step in steps:
                session.expire_all()
                instance = session.get(ProcessInstance, instance_id)
                [task] = [t for t in services.open_tasks_of(session, instance) if t.form_key == form_key]
                if step is None:
                    services.claim_task(session, actors[username], task.id)
                else:
                    services.complete_task(session, actors[username], task.id, step)
                session.commit()
            session.expire_all()
            instance = session.get(ProcessInstance, instance_id)
            mails = session.scalars(
                select(OutboxMail).where(OutboxMail.instance_id == instance_id).order_by(OutboxMail.id)
            )
            events = session.scalars(
                select(AuditEvent).where(AuditEvent.instance_id == instance_id).order_by(AuditEvent.id)
            )
            procedure = public.procedure_of(kind)
            templates[name] = Template(
                kind=kind,
                status=status,
                code=filed.code,
                name=filer,
                email=email,
                fields=(procedure.filer_name_field, procedure.filer_email_field),
                row=harness.row_of(instance),
                public=harness.row_of(
                    session.scalar(select(PublicRequest).where(PublicRequest.instance_id == instance_id))
                ),
                mails=[harness.row_of(mail) for mail in mails],
                events=[harness.row_of(e) for e in events],
            )
        return templates

    # ---- the filler: bulk inserts copying the real filings ----

    def _fill(self, count: int) -> dict[str, list[str]]:
        """Copies of the real filings, older than them; the tracking codes of the copies, by kind."""
        rng = random.Random(20260401)
        cycle = [kind for kind, (share, *_rest) in KINDS.items() for _ in range(share)]
        codes: dict[str, list[str]] = {kind: [] for kind in KINDS}
        with self.engine.connect() as connection:
            first_id = connection.scalar(select(func.max(ProcessInstance.id))) + 1
            event_id = connection.scalar(select(func.max(AuditEvent.id))) + 1
            prev_hash = connection.scalar(select(AuditEvent.hash).order_by(AuditEvent.id.desc()).limit(1))
        began_at = clock.utcnow() - timedelta(minutes=count + 60)
        done = 0
        while done < count:
            rows = {"instances": [], "public": [], "mails": [], "events": []}
            for n in range(done, min(count, done + CHUNK)):
                if n % len(cycle) == 0:
                    rng.shuffle(cycle)
                kind = cycle[n % len(cycle)]
                raw = "".join(rng.choices(public.ALPHABET, k=public.CODE_LENGTH))
                codes[kind].append(public.format_code(raw))
                prev_hash = self._copy(
                    self.templates[kind], first_id + n, event_id, prev_hash, raw, began_at + timedelta(minutes=n), rows
                )
                event_id += len(self.templates[kind].events)
            with self.engine.begin() as connection:
                connection.execute(insert(ProcessInstance), rows["instances"])
                connection.execute(insert(PublicRequest), rows["public"])
                connection.execute(insert(OutboxMail), rows["mails"])
                connection.execute(insert(AuditEvent), rows["events"])
            done += len(rows["instances"])
        return codes

    @staticmethod
    def _copy(
        template: Template, instance_id: int, event_id: int, prev_hash: str, raw: str, started_at, rows: dict
    ) -> str:
        """One copy of a filing: its own filer, code, times and ids; its history chained on. The new tail hash.

        The rows are keyed by column, as Core inserts take them: "state" is the instance's workflow state.
        """
        name, email, code = f"Resident {instance_id}", f"resident.{instance_id}@example.net", public.format_code(raw)
        row = template.row
        shift = started_at - row["started_at"]

        def own(words: str) -> str:
            return words.replace(template.name, name).replace(template.email, email)

        rows["instances"].append(
            {
                **row,
                "id": instance_id,
                "title": own(row["title"]),
                "state": own(row["state"]),
                "data": {**row["data"], template.fields[0]: name, template.fields[1]: email},
                "started_at": started_at,
                "ended_at": row["ended_at"] + shift if row["ended_at"] else None,
            }
        )
        rows["public"].append(
            {
                "instance_id": instance_id,
                "kind": template.kind,
                "code_hash": public.code_hash(raw),
                "received_at": template.public["received_at"] + shift,
            }
        )
        reference = f"Reference: {template.kind} {row['id']}\n"
        for mail in template.mails:
            created = mail["created_at"] + shift
            rows["mails"].append(
                {
                    **{key: value for key, value in mail.items() if key != "id"},
                    "instance_id": instance_id,
                    "recipients": [email if r == template.email else r for r in mail["recipients"]],
                    "body": own(mail["body"])
                    .replace(template.code, code)
                    .replace(reference, f"Reference: {template.kind} {instance_id}\n"),
                    "status": "sent",
                    "attempts": 1,
                    "created_at": created,
                    "next_attempt_at": created,
                    "sent_at": created + timedelta(seconds=30),
                    "deliver_by": mail["deliver_by"] + shift if mail["deliver_by"] else None,
                }
            )
        for offset, source in enumerate(template.events):
            copied = {
                **source,
                "id": event_id + offset,
                "instance_id": instance_id,
                "at": source["at"] + shift,
                "actor_name": name if source["actor_name"] == template.name else source["actor_name"],
                "prev_hash": prev_hash,
            }
            copied["hash"] = prev_hash = audit._digest(SimpleNamespace(**copied))
            rows["events"].append(copied)
        return prev_hash

    def describe(self) -> str:
        """What was built."""
        with self.engine.connect() as connection:
            counts = {
                model.__tablename__: connection.scalar(select(func.count()).select_from(model))
                for model in (PublicRequest, ProcessInstance, OutboxMail, AuditEvent)
            }
        return (
            f"{counts['public_request']:,} public requests ({len(self.templates)} real, the rest copied in "
            f"{self.fill_seconds:.1f} s): {counts['process_instance']:,} instances, "
            f"{counts['outbox_mail']:,} letters, {counts['audit_event']:,} audit events{self.file_size()}"
        )


# ---- the app: filings and lookups -----------------------------------------------------------------

_addresses = itertools.count(1)


def _new_address() -> str:
    """A client address no filing has come from yet, so the submission limit never refuses one."""
    n = next(_addresses)
    return f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}"


class PublicApp:
    """The real app on one database (lookups limited at LOOKUP_LIMIT), a test client, the codes to look up."""

    def __init__(self, database: Database):
        from web import create_app

        self.database = database
        settings = dataclasses.replace(database.settings, public_lookup_limit=LOOKUP_LIMIT)
        self.app = create_app({"TESTING": True}, settings=settings)
        self.engine = self.app.extensions["civicflow.engine"]
        self.client = self.app.test_client()
        self.storage = DatabaseStorage(engine=self.engine)
        self.codes = {}
        for status, kind in MEASURED.items():
            copies = database.codes[kind]
            step = max(1, len(copies) // (LOOKUP_CODES - 1))
            self.codes[status] = [database.templates[kind].code, *copies[::step]][:LOOKUP_CODES]
        self.filed: list[str] = []
        self.hits = itertools.count()

    def status(self, code: str, expected: int = 200) -> dict:
        """The JSON status of a code, from the lookups' address."""
        response = self.client.get(f"/api/v1/public/requests/{code}", environ_base={"REMOTE_ADDR": LOOKUP_ADDRESS})
        assert response.status_code == expected, (code, response.status_code, response.get_data(as_text=True))
        return response.get_json()

    def lookups(self, status: str):
        """A callable looking up the next code of the series, round and round."""
        codes = itertools.cycle(self.codes[status])
        return lambda: self.status(next(codes))

    def file(self) -> None:
        """One dispute through POST /api/v1/public/disputes, from an address of its own."""
        response = self.client.post(
            "/api/v1/public/disputes", json=DISPUTE, environ_base={"REMOTE_ADDR": _new_address()}
        )
        assert response.status_code == 201, (response.status_code, response.get_data(as_text=True))
        self.filed.append(response.get_json()["tracking_code"])

    def hit_new(self) -> None:
        """DatabaseStorage.incr for a client not seen before (a new row)."""
        self.storage.incr(f"bench/new/{next(self.hits)}", 60)

    def hit_again(self) -> None:
        """DatabaseStorage.incr for a client seen before in the window (the row counts on)."""
        self.storage.incr("bench/returning", 60)

    def check(self) -> None:
        """Every lookup series shows its status; copies show their own filer's letters; unknown codes are 404."""
        for status, codes in self.codes.items():
            for code in (codes[0], codes[1], codes[len(codes) // 2], codes[-1]):
                shown = self.status(code)
                assert (shown["status"], shown["received_at"] is not None) == (status, True), (code, shown)
                assert (shown["acknowledged_at"] is None) == (status == "received"), (code, shown)
                if status == "responded":
                    assert "The City Attorney reviewed" in shown["response"], shown
                    assert ("Templatefiler" in shown["response"]) == (code == codes[0]), shown["response"]
                else:
                    assert shown["response"] is None, shown
        self.status(public.new_code(), expected=404)

    def statements(self, call) -> harness.Recording:
        """The SQL statements (with their parameters) and the commits of one call."""
        with harness.recording(self.engine) as seen:
            call()
        return seen

    def plans(self, status: str) -> list[str]:
        """The plan of each read of one lookup: SQLite's EXPLAIN QUERY PLAN, PostgreSQL's EXPLAIN."""
        seen = self.statements(self.lookups(status))
        lines = []
        with self.engine.connect() as connection:
            for statement, parameters in seen.statements:
                words = statement.split()
                if words[0] not in ("SELECT", "DELETE"):
                    continue
                table = words[words.index("FROM") + 1]
                plan = "; ".join(
                    line.strip().removeprefix("->").strip()
                    for line in harness.plan(connection, statement, parameters, analyze=False)
                    if not line.strip().startswith(("Sort Key", "Filter", "Index Cond"))
                )
                lines.append(f"{table:<16} {plan}")
            connection.rollback()
        return lines

    def close(self) -> None:
        """Let go of the app's connections."""
        self.engine.dispose()


# ---- bare SpiffWorkflow -------------------------------------------------------------------------


class Bare(harness.BareDiagram):
    """The dispute diagram parsed once; its start run in memory, as bench.engine's variant (a)."""

    def __init__(self):
        super().__init__(KEY)

    def _start(self):
        workflow = self.start(BARE_START)
        [task] = workflow.get_tasks(state=TaskState.READY, manual=True)
        assert task.task_spec.bpmn_id == "attorney_consultation", task.task_spec.bpmn_id
        return workflow

    def start_only(self) -> None:
        """The start in memory: acknowledgement sent, the City Attorney's consultation waiting, its timers set."""
        self._start()

    def start_saved(self) -> None:
        """[info] the start, serialized as civicflow stores it (engine/diagrams/serialization.py, spec-free JSON)."""
        serialization.dumps(self._start())


# ---- measuring -----------------------------------------------------------------------------------


def _line(label: str, seconds: list[float], unit: str) -> str:
    return harness.line(label, seconds, unit, width=52)


def _sql(seen: harness.Recording) -> str:
    limiter = sum("rate_limit" in statement for statement, _parameters in seen.statements)
    commits = seen.commits
    return f"{len(seen.statements)} SQL ({limiter} on rate_limit), {commits} commit{'' if commits == 1 else 's'}"


@dataclasses.dataclass
class Result:
    """The medians of one database kind, in seconds."""

    lookups: dict[str, tuple[float, float]]  # status -> (among 1,000, among 100,000)
    filing: float
    filing_large: float
    bare: float
    hit: float
    hits_per_filing: int


def run_on(where: harness.Databases, bare: Bare, options) -> Result:
    """Build both databases, check the lookups, time them; then time filings and the limiter; the medians."""
    databases, apps = {}, {}
    with ExitStack() as stack:  # closes the apps and the databases at the end
        for size in SIZES:
            databases[size] = stack.enter_context(Database(where.urls[size], where.folder / str(size), size))
            apps[size] = stack.enter_context(closing(PublicApp(databases[size])))
            apps[size].check()
        small, large = (apps[size] for size in SIZES)
        print(f"-- {where.kind}")
        for size in SIZES:
            print(databases[size].describe())
        print(f"plans of one lookup's reads at {SIZES[-1]:,}:")
        print("\n".join(f"    {line}" for line in large.plans("responded")))

        series = {(size, status): apps[size].lookups(status) for size in SIZES for status in MEASURED}
        times = harness.interleaved(series, options.runs, options.rounds, options.warmup)
        lookups = {}
        print(
            "each series looks up requests in turn: "
            + "; ".join(
                f"{status}: {request_kind.replace('_', ' ')}, {len(small.codes[status])} / {len(large.codes[status])}"
                for status, request_kind in MEASURED.items()
            )
        )
        for status in MEASURED:
            for size in SIZES:
                label = f"lookup, {status}, among {size:,}"
                print(
                    _line(label, times[size, status], "lookups")
                    + "  "
                    + _sql(apps[size].statements(apps[size].lookups(status)))
                )
            lookups[status] = tuple(statistics.median(times[size, status]) for size in SIZES)

        series = {
            "filing": small.file,
            "filing_large": large.file,
            "bare": bare.start_only,
            "bare_saved": bare.start_saved,
            "hit": small.hit_new,
            "hit_again": small.hit_again,
        }
        rounds = max(1, min(options.rounds, options.filings // 5))
        times = harness.interleaved(series, options.filings, rounds, options.warmup)
        filing = small.statements(small.file)
        print(
            _line(f"filing (POST /api/v1/public/disputes), among {SIZES[0]:,}", times["filing"], "filings")
            + f"  {_sql(filing)}"
        )
        print(_line(f"[info] the same among {SIZES[-1]:,}", times["filing_large"], "filings"))
        print(_line("bare SpiffWorkflow, the dispute's start in memory", times["bare"], "runs"))
        print(_line("[info] bare start + state.dumps (spec-free JSON)", times["bare_saved"], "runs"))
        print(_line("rate limiter alone: incr, a new client", times["hit"], "hits"))
        print(_line("[info] incr, a client seen in the window", times["hit_again"], "hits"))
        for app in apps.values():
            assert app.status(app.filed[-1])["status"] == "acknowledged"
        with small.database.sessions() as session:
            verified = audit.verify(session)
        assert verified.ok, verified
        print(f"audit chain at {SIZES[0]:,} after the filings: {verified.checked:,} events, every link holds")
        return Result(
            lookups=lookups,
            filing=statistics.median(times["filing"]),
            filing_large=statistics.median(times["filing_large"]),
            bare=statistics.median(times["bare"]),
            hit=statistics.median(times["hit"]),
            hits_per_filing=sum(s.lstrip().startswith("INSERT INTO rate_limit") for s, _p in filing.statements),
        )


def main(argv=None) -> None:
    """Parse the options, build the databases, print the figures; the last line is the worst lookup ratio."""
    parser = harness.parser(
        __doc__,
        runs=400,
        runs_help="timed lookups per status and size",
        rounds=40,
        warmup=20,
        warmup_help="warm-up calls per series",
    )
    parser.add_argument("--filings", type=int, default=200, help="timed filings per size (default 200)")
    options = harness.parse(parser, argv)

    began = time.perf_counter()
    bare = Bare()
    harness.print_header(
        f"civicflow public benchmark: POST /api/v1/public/disputes against bare SpiffWorkflow's start of "
        f"{bare.path.name}; GET /api/v1/public/requests/<code> among {SIZES[0]:,} and {SIZES[1]:,} public "
        f"requests, {options.runs} lookups per series in {options.rounds} interleaved rounds after "
        f"{options.warmup} warm-up; medians",
        "SpiffWorkflow",
        "SQLAlchemy",
        "Flask",
        "Flask-Limiter",
    )
    results = harness.on_each_database("public", SIZES, options.postgres, lambda where: run_on(where, bare, options))

    print(f"wall time {time.perf_counter() - began:.1f} s")
    ratios = {}
    for kind, result in results.items():
        harness.print_ratio(f"{kind} filing civicflow/bare", result.filing / result.bare)
        harness.print_ratio(f"{kind} filing 100k/1k [info]", result.filing_large / result.filing)
        harness.print_ratio(
            f"{kind} rate limiter ({result.hits_per_filing} incr)/filing [info]",
            result.hits_per_filing * result.hit / result.filing,
        )
        for status, (small, large) in result.lookups.items():
            ratios[f"{kind} {status}"] = large / small
            harness.print_ratio(f"{kind} lookup {status} 100k/1k", large / small)
    harness.print_worst(ratios, "lookup 100k/1k")


if __name__ == "__main__":
    main()
