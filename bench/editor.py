"""The procedure editor: validating a diagram against bare SpiffWorkflow, the editor's operations, early refusals.

(1) Validation of each shipped diagram (workflows/*.bpmn), as publishing does it: civicflow's
loading.load_diagram (safe parse, the XSD with every error collected, the sandbox's check of every
expression, civicflow's structure rules, then SpiffWorkflow's parser) against bare SpiffWorkflow in the
same run: SpiffBpmnParser() as constructed by default, add_bpmn_xml of an lxml tree parsed from the same
bytes, get_spec and get_subprocess_specs. SpiffBpmnParser()'s default validator is None (no schema check),
so, for context, the same with SpiffWorkflow's XSD validator (validator=VALIDATOR) is timed too.

(2) The editor's operations through engine.versions on a SQLite file (and PostgreSQL with --postgres), each
in a session and write transaction of its own with its commit, as web.db.transactional runs them:
save_draft of new_account_request with a Records Officer check added before the Communications Manager's
approval (tests/editing.py's add_step_before), publish of a draft as a new version, difference between
version 1 and that edit, and the version list of the procedure with 1 and with 50 stored versions (two
databases built alike; the 49 further versions are real saves and publications, each with its own process
name). The version list reads every version, so it grows with their number, but it must not grow faster
(no query per version): its SQL statements are counted at both sizes, and its cost per further version shown.

(1b) The dry run publishing makes of each shipped diagram (engine/versions/dry_run.py): every path driven in
memory with data its forms accept, each choice tried, timers fired. Each must cost under 1 s; the paths explored
(decision points, ends reached, user tasks completed) are printed beside the median.

(3) A diagram refused before it is parsed: a body of 2 MiB + 1 byte, and a DOCTYPE with the "billion
laughs" entities, through xml.parse_xml_safely. For scale, the shipped diagram and a 2 MiB body that is
allowed, both parsed.

    .venv/bin/python -m bench.editor                 # SQLite: about 30 s on 2 cores, 45 s while tests run
    .venv/bin/python -m bench.editor --runs 40       # quicker, noisier
    .venv/bin/python -m bench.editor --postgres postgresql+psycopg://postgres@127.0.0.1:5432/test   # 10 s more

The last line is `ratio validation civicflow/bare: X.XX`: the median, over the five shipped diagrams, of
median(loading.load_diagram) / median(bare SpiffBpmnParser() parse); the line before it names the worst.
"""

from __future__ import annotations

import statistics
import time
from contextlib import ExitStack
from pathlib import Path

from lxml import etree
from SpiffWorkflow.spiff.parser import VALIDATOR, SpiffBpmnParser
from sqlalchemy import func, select

from bench import harness
from engine import procedures
from engine.db.connection import begin_write
from engine.db.models import ProcessDraft, ProcessVersion
from engine.demo import create_departments
from engine.diagrams import expressions, loading, rules, schema, xml
from engine.errors import DiagramError
from engine.settings import REPO_ROOT
from engine.versions import difference, drafts, publishing, stored
from engine.versions.dry_run import dry_run
from engine.versions.shipped import sync_workflows
from tests.editing import add_step_before, set_attribute, shipped

KEY = harness.ACCOUNT_REQUEST
STORED = (1, 50)  # versions of the procedure in the two databases whose version list is timed
PROCESS_NAME = "New social media account request"

EDITED = add_step_before(shipped(KEY), "communications_review")  # a Records Officer check before comms
# The 2 MiB + 1 byte body: a real diagram followed by a comment (allowed after the root) that makes it too big.
_PADDING = xml.MAX_DIAGRAM_BYTES + 1 - len(shipped(KEY)) - len(b"<!---->")
TOO_LARGE = shipped(KEY) + b"<!--" + b"x" * _PADDING + b"-->"
LARGEST_ALLOWED = TOO_LARGE[: -len(b"x-->")] + b"-->"  # the same, one byte shorter: parsed
BILLION_LAUGHS = b"".join(
    [
        b'<?xml version="1.0"?>\n<!DOCTYPE lolz [\n  <!ENTITY lol "lol">\n',
        *(f'  <!ENTITY lol{n} "{f"&lol{n - 1};" * 10 if n > 1 else "&lol;" * 10}">\n'.encode() for n in range(1, 10)),
        b"]>\n<lolz>&lol9;</lolz>\n",
    ]
)


def _named(xml: bytes, name: str) -> bytes:
    """The diagram with its process renamed (a distinct version, content and hash)."""
    return set_attribute(xml, KEY, "name", name)


# ---- (1) validation: civicflow against bare SpiffWorkflow ---------------------------------------


class Diagram:
    """One shipped diagram, validated the three ways timed."""

    def __init__(self, path: Path):
        self.key, self.name, self.data = path.stem, path.name, path.read_bytes()
        procedure = procedures.get(self.key)
        self.form_keys, self.letters = procedure.form_keys(), procedure.letters
        self.root = xml.parse_xml_safely(self.data)  # for the stages timed alone

    def civicflow(self):
        """loading.load_diagram, as publishing calls it."""
        return loading.load_diagram(self.data, self.key, self.form_keys, self.letters)

    def _bare(self, validator):
        parser = SpiffBpmnParser() if validator is None else SpiffBpmnParser(validator=validator)
        parser.add_bpmn_xml(etree.ElementTree(etree.fromstring(self.data)), filename=self.name)
        return parser.get_spec(self.key), parser.get_subprocess_specs(self.key)

    def bare(self):
        """SpiffBpmnParser() as constructed by default (validator None: no schema check)."""
        return self._bare(None)

    def bare_xsd(self):
        """[info] SpiffBpmnParser with SpiffWorkflow's XSD validator (stops at the first error)."""
        return self._bare(VALIDATOR)

    # [info] the stages of load_diagram timed alone, on the parsed document where the stage takes one.
    def stage_parse(self):
        """The safe parse (size, DOCTYPE, well-formed, BPMN root)."""
        return xml.parse_xml_safely(self.data)

    def stage_schema(self):
        """The XSD, every error collected (a private step of loading.diagram_problems)."""
        return schema.schema_problems(self.root)

    def stage_sandbox(self):
        """The sandbox's check of every expression and script."""
        return expressions.check_expressions(self.root)

    def stage_structure(self):
        """civicflow's rules read off the XML: lanes, forms, ways out, gateways, timers."""
        return rules.structure_problems(self.root, self.key, self.form_keys)

    def stage_spiff(self):
        """SpiffWorkflow's parser as load_diagram runs it: no validator, on the tree already parsed."""
        parser = SpiffBpmnParser(validator=None)
        parser.add_bpmn_xml(etree.ElementTree(self.root), filename=self.name)
        return parser.get_spec(self.key), parser.get_subprocess_specs(self.key)

    def check(self) -> None:
        """All three accept the diagram and build the same task specs."""
        loaded = self.civicflow()
        for spec, subprocess_specs in (self.bare(), self.bare_xsd()):
            assert set(spec.task_specs) == set(loaded.spec.task_specs), self.key
            assert set(subprocess_specs) == set(loaded.subprocess_specs), self.key


STAGES = {
    "stage_parse": "safe parse",
    "stage_schema": "XSD, every error",
    "stage_sandbox": "sandbox",
    "stage_structure": "structure rules",
    "stage_spiff": "SpiffWorkflow parser",
}


def validation(options) -> tuple[dict[str, float], dict[str, float]]:
    """Time the three ways on every diagram in interleaved rounds; print the table; the ratios by diagram."""
    diagrams = [Diagram(path) for path in loading.workflow_files(REPO_ROOT / "workflows")]
    for diagram in diagrams:
        diagram.check()
    variants = ("civicflow", "bare", "bare_xsd")
    series = {(d.key, variant): getattr(d, variant) for d in diagrams for variant in (*variants, *STAGES)}
    times = harness.interleaved(series, options.runs, options.rounds, options.warmup, collect_per_round=True)
    timed = len(next(iter(times.values())))
    print(
        f"-- (1) validation of the shipped diagrams: {timed} runs per diagram and variant in {options.rounds} "
        f"interleaved rounds after {options.warmup} warm-up runs; medians in ms"
    )
    print("    civicflow: loading.load_diagram(data, key, form_keys, letters)")
    print(
        "    bare:      SpiffBpmnParser() (default validator: None) .add_bpmn_xml(lxml tree of the bytes) "
        "+ .get_spec + .get_subprocess_specs"
    )
    print("    [info] bare + XSD: the same with SpiffBpmnParser(validator=VALIDATOR)")
    print(f"{'diagram':<22}{'bytes':>8}{'civicflow':>11}{'bare':>9}{'ratio':>8}{'[info] bare+XSD':>17}{'ratio':>8}")
    ratios, ratios_xsd = {}, {}
    for d in diagrams:
        civicflow, bare, bare_xsd = (statistics.median(times[d.key, v]) for v in variants)
        ratios[d.key], ratios_xsd[d.key] = civicflow / bare, civicflow / bare_xsd
        print(
            f"{d.key:<22}{len(d.data):>8,}{civicflow * 1000:>11.3f}{bare * 1000:>9.3f}{ratios[d.key]:>8.2f}"
            f"{bare_xsd * 1000:>17.3f}{ratios_xsd[d.key]:>8.2f}"
        )
    print(
        "[info] civicflow's stages timed alone, medians in ms; the rest (the checks on the parsed spec: lanes, "
        "timers, letters, form keys) is civicflow's median less the stages"
    )
    print(f"{'diagram':<22}" + "".join(f"{label:>{len(label) + 3}}" for label in STAGES.values()) + f"{'rest':>9}")
    for d in diagrams:
        stages = {stage: statistics.median(times[d.key, stage]) for stage in STAGES}
        rest = statistics.median(times[d.key, "civicflow"]) - sum(stages.values())
        columns = "".join(f"{stages[stage] * 1000:>{len(label) + 3}.3f}" for stage, label in STAGES.items())
        print(f"{d.key:<22}{columns}{rest * 1000:>9.3f}")
    return ratios, ratios_xsd


# ---- (1b) the dry run before publishing ------------------------------------------------------------------

DRY_RUN_LIMIT = 1.0  # seconds: what a dry run of a shipped diagram may cost


def dry_runs(where: harness.Databases, options) -> float:
    """Time the dry run of every shipped diagram on a database with the departments; print; the worst median."""
    database = harness.Database(where.urls["dry_run"], where.folder)
    with database, database.sessions() as session:
        create_departments(session)
        session.commit()
        diagrams = [Diagram(path) for path in loading.workflow_files(REPO_ROOT / "workflows")]
        loaded = {d.key: d.civicflow() for d in diagrams}
        found = {d.key: dry_run(session, d.key, loaded[d.key], d.data) for d in diagrams}
        for key, result in found.items():
            assert not result.problems and not result.warnings and not result.cut, (key, result)
        series = {d.key: (lambda d=d: dry_run(session, d.key, loaded[d.key], d.data)) for d in diagrams}
        runs = max(1, options.runs // 5)
        times = harness.interleaved(series, runs, min(options.rounds, runs), 1, collect_per_round=True)
    print(
        f"-- (1b) the dry run before publishing (engine.versions.dry_run.dry_run) of each shipped diagram on "
        f"{where.kind}: {runs} runs each in interleaved rounds after 1 warm-up run; limit {DRY_RUN_LIMIT:g} s"
    )
    for key, seconds in times.items():
        result = found[key]
        print(
            harness.line(f"dry run, {key}", seconds, "runs", width=36)
            + f"  {result.paths} decision points, {result.ended} ends, {result.tasks} tasks"
        )
    worst = max(statistics.median(seconds) for seconds in times.values())
    assert worst < DRY_RUN_LIMIT, worst
    return worst


# ---- (2) the editor's operations on a database ------------------------------------------------------


class EditorDatabase(harness.Database):
    """A migrated database with the departments, the shipped diagrams, an administrator, and `stored` versions
    of new_account_request (the shipped one, then real saves and publications of renamed copies)."""

    def __init__(self, url: str, folder: Path, stored: int):
        super().__init__(url, folder)
        with self.sessions() as session:
            create_departments(session)
            sync_workflows(session)
            self.admin = harness.create_people(session, [("admin", "administration", ["admin"], [])])["admin"]
        self.published = 0
        for number in range(2, stored + 1):
            self.save(_named(shipped(KEY), f"{PROCESS_NAME} (revision {number})"))
            self.publish()
        assert len(self.versions()) == stored, stored

    def versions(self) -> list[stored.Version]:
        """The version list, in a session of its own (a page that only reads)."""
        with self.sessions() as session:
            return stored.versions(session, self.admin, KEY)

    def save(self, data: bytes) -> drafts.Draft:
        """save_draft and its commit."""
        with self.sessions() as session:
            begin_write(session)
            draft = drafts.save_draft(session, self.admin, KEY, data)
            session.commit()
        return draft

    def save_edited(self) -> None:
        """The first save of the edited diagram (there is no draft): stored, no problems."""
        draft = self.save(EDITED)
        assert (draft.revision, draft.problems) == (1, []), (draft.revision, draft.problems)

    def discard(self) -> None:
        """Throw the draft away if there is one (so the next save is a first one)."""
        with self.sessions() as session:
            begin_write(session)
            if session.scalar(select(ProcessDraft.id).where(ProcessDraft.key == KEY)) is not None:
                drafts.discard_draft(session, self.admin, KEY)
            session.commit()

    def save_next(self) -> None:
        """A draft to publish: the edited diagram under a process name of its own."""
        self.save(_named(EDITED, f"{PROCESS_NAME} (bench {self.published + 1})"))

    def publish(self) -> None:
        """publish and its commit: the draft becomes a new stored version, the one in use."""
        with self.sessions() as session:
            begin_write(session)
            model = publishing.publish(session, self.admin, KEY)
            session.commit()
        self.published += 1
        assert model.published, model.number

    def stored(self) -> int:
        """How many versions of the procedure are stored."""
        with self.sessions() as session:
            return session.scalar(select(func.count()).select_from(ProcessVersion).where(ProcessVersion.key == KEY))

    def statements(self, run, setup=None) -> str:
        """The SQL statements and commits of one run (its setup not counted)."""
        if setup is not None:
            setup()
        with harness.recording(self.engine) as seen:
            run()
        return seen.sql()


def operations(where: harness.Databases, options) -> float:
    """Build the two databases; time the version lists, then the other operations; print; the 50/1 ratio."""
    databases = {}
    with ExitStack() as stack:  # closes the databases at the end
        began = time.perf_counter()
        for stored in STORED:
            folder = where.folder / f"{where.kind}-{stored}"
            databases[stored] = stack.enter_context(EditorDatabase(where.urls[stored], folder, stored))
        built = time.perf_counter() - began
        one = databases[STORED[0]]
        print(
            f"-- (2) the editor's operations on {where.kind}: {options.runs} runs each in {options.rounds} interleaved "
            f"rounds after {options.warmup} warm-up runs, a session and a commit per write; medians"
        )
        print(
            f"two databases built alike in {built:.1f} s, new_account_request stored in {STORED[0]} and in "
            f"{STORED[1]} versions ({STORED[1] - 1} saved and published through engine.versions)"
        )

        series = {stored: databases[stored].versions for stored in STORED}
        times = harness.interleaved(series, options.runs, options.rounds, options.warmup, collect_per_round=True)
        for stored in STORED:
            label = f"versions, {stored} stored version{'' if stored == 1 else 's'}"
            print(
                harness.line(label, times[stored], "lists", width=46)
                + f"  {databases[stored].statements(databases[stored].versions)}"
            )
        small, large = (statistics.median(times[stored]) for stored in STORED)
        per_version = (large - small) / (STORED[1] - STORED[0])
        print(
            f"versions {STORED[1]}/{STORED[0]}: {large / small:.2f} for {STORED[1] // STORED[0]} times the rows "
            f"({per_version * 1e6:.1f} µs per further version, {small * 1000:.3f} ms for the first)"
        )

        # The other operations on the 1-version database, now that its list is timed (publishing adds versions).
        v1_xml, v2_xml = shipped(KEY).decode(), EDITED.decode()
        changed = difference.difference(v1_xml, v2_xml)
        assert {a["id"] for a in changed.added} == {"records_check", "Flow_records_check", "Lane_records_check"}
        series = {
            "save_draft, the edited new_account_request": (one.discard, one.save_edited),
            "publish, the draft as a new version": (one.save_next, one.publish),
            "difference(version 1, the edit)": lambda: difference.difference(v1_xml, v2_xml),
        }
        counts = dict.fromkeys(series, "no SQL")
        for label, item in series.items():
            if isinstance(item, tuple):
                setup, run = item
                counts[label] = one.statements(run, setup)
        times = harness.interleaved(series, options.runs, options.rounds, options.warmup, collect_per_round=True)
        for label, seconds in times.items():
            print(harness.line(label, seconds, "calls", width=46) + f"  {counts[label]}")
        print(f"[info] after the publications, {one.stored()} versions of new_account_request are stored")
        return large / small


# ---- (3) refused before parsing ------------------------------------------------------------------


def _refused(data: bytes, says: str) -> None:
    try:
        xml.parse_xml_safely(data)
    except DiagramError as exc:
        assert says in exc.message, exc.message
    else:
        raise AssertionError(f"not refused: {says}")


def refusals(options) -> None:
    """Time the two refusals against parsing what is allowed; print the medians in µs."""
    assert len(TOO_LARGE) == xml.MAX_DIAGRAM_BYTES + 1 and len(LARGEST_ALLOWED) == xml.MAX_DIAGRAM_BYTES
    series = {
        f"a body of 2 MiB + 1 byte ({len(TOO_LARGE):,} bytes): refused": lambda: _refused(TOO_LARGE, "too large"),
        f"DOCTYPE, billion laughs ({len(BILLION_LAUGHS)} bytes): refused": lambda: _refused(BILLION_LAUGHS, "DOCTYPE"),
        f"[info] {KEY}.bpmn ({len(shipped(KEY)):,} bytes): parsed": lambda: xml.parse_xml_safely(shipped(KEY)),
        f"[info] 2 MiB exactly ({len(LARGEST_ALLOWED):,} bytes): parsed": lambda: xml.parse_xml_safely(LARGEST_ALLOWED),
    }
    for run in series.values():
        run()
    times = harness.interleaved(series, options.refusals, options.rounds, options.warmup, collect_per_round=True)
    print(f"-- (3) xml.parse_xml_safely: {options.refusals} calls each in {options.rounds} interleaved rounds; medians")
    for label, seconds in times.items():
        median, q1, q3 = harness.quartiles(seconds)
        print(f"{label:<58} median {median * 1e6:9.1f} µs  (IQR {q1 * 1e6:.1f}-{q3 * 1e6:.1f} µs)")


# ---- measuring -----------------------------------------------------------------------------------


def main(argv=None) -> None:
    """Parse the options, run the three parts, print the figures; the last line is the validation ratio."""
    parser = harness.parser(
        __doc__,
        runs=100,
        runs_help="timed runs per diagram and variant, and per editor operation",
        rounds=20,
        warmup=5,
    )
    parser.add_argument("--refusals", type=int, default=500, help="timed calls per refused body (default 500)")
    options = harness.parse(parser, argv)

    began = time.perf_counter()
    harness.print_header(
        "civicflow editor benchmark: validating the shipped diagrams against bare SpiffWorkflow; "
        "the dry run before publishing; engine.versions's save_draft, publish, difference and versions; "
        "diagrams refused before parsing",
        "SpiffWorkflow",
        "lxml",
        "SQLAlchemy",
        note=f"; libxml2 {'.'.join(map(str, etree.LIBXML_VERSION))}",
    )
    ratios, ratios_xsd = validation(options)
    dry_run_worst = harness.on_each_database("editor-dry-run", ["dry_run"], None, lambda w: dry_runs(w, options))
    lists = harness.on_each_database("editor", STORED, options.postgres, lambda where: operations(where, options))
    refusals(options)
    print(f"the slowest dry run of a shipped diagram: median {dry_run_worst['SQLite'] * 1000:.1f} ms (limit 1 s)")
    print(f"wall time {time.perf_counter() - began:.1f} s")
    for kind, ratio in lists.items():
        harness.print_ratio(f"versions {STORED[1]}/{STORED[0]} {kind}", ratio)
    harness.print_ratio("validation civicflow/bare+XSD [info]", statistics.median(ratios_xsd.values()))
    worst = max(ratios, key=ratios.get)
    print(f"# the median of the five diagrams' ratios below; the worst is {worst}: {ratios[worst]:.2f}")
    harness.print_ratio("validation civicflow/bare", statistics.median(ratios.values()))


if __name__ == "__main__":
    main()
