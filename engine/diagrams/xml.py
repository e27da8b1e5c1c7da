"""Reading a diagram's XML safely, and the BPMN names it is read with.

A DOCTYPE and a file over 2 MiB are refused before any parsing; the parser itself resolves no entities,
loads no DTD and reaches no network, as a second line.
"""

from __future__ import annotations

import re

from lxml import etree

from engine.diagrams.problems import problem_at
from engine.errors import DiagramError

MAX_DIAGRAM_BYTES = 2 * 1024 * 1024
MAX_DIAGRAM_ELEMENTS = 15_000

BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"
SPIFF_NS = "http://spiffworkflow.org/bpmn/schema/1.0/core"
BPMNDI_NS = "http://www.omg.org/spec/BPMN/20100524/DI"
DC_NS = "http://www.omg.org/spec/DD/20100524/DC"
DI_NS = "http://www.omg.org/spec/DD/20100524/DI"

BPMN = f"{{{BPMN_NS}}}"
SPIFF = f"{{{SPIFF_NS}}}"
PROPERTIES = f"{BPMN}extensionElements/{SPIFF}properties/{SPIFF}property"
SERVICE_OPERATOR = f"{BPMN}extensionElements/{SPIFF}serviceTaskOperator"


def bpmn(*names: str) -> list[str]:
    """The qualified tags of BPMN elements: bpmn("userTask") -> ["{...MODEL}userTask"]."""
    return [f"{BPMN}{name}" for name in names]


def property_of(element: etree._Element, name: str) -> str | None:
    """A spiffworkflow:property of an element (formKey, deadline), or None."""
    for prop in element.iterfind(PROPERTIES):
        if prop.get("name") == name:
            return prop.get("value")
    return None


def label(element: etree._Element) -> str:
    """What a person calls an element: its name, else its id, else its kind."""
    return element.get("name") or element.get("id") or etree.QName(element).localname


_PROLOG_DOCTYPE = re.compile(r"\A\ufeff?\s*(?:<\?.*?\?>\s*|<!--.*?-->\s*)*<!DOCTYPE", re.DOTALL | re.IGNORECASE)


def _prolog_text(data: bytes) -> str:
    """The start of the document as text, enough to see a DOCTYPE in any encoding XML allows."""
    head = data[:65536]
    for bom, codec in (
        (b"\xff\xfe\x00\x00", "utf-32-le"),
        (b"\x00\x00\xfe\xff", "utf-32-be"),
        (b"\xff\xfe", "utf-16-le"),
        (b"\xfe\xff", "utf-16-be"),
    ):
        if head.startswith(bom):
            return head[len(bom) :].decode(codec, errors="ignore")
    if head.startswith(b"<\x00") or head.startswith(b"\x00<"):
        return head.decode("utf-16-le" if head[0] == 0x3C else "utf-16-be", errors="ignore")
    return head.decode("latin-1")  # every ASCII-compatible encoding reads "<!DOCTYPE" the same


def _refuse_doctype(line: int) -> DiagramError:
    return DiagramError(
        "The diagram declares a DOCTYPE, which is not allowed.",
        [problem_at("DOCTYPE declarations (and the entities they carry) are not allowed.", line=line)],
    )


def _refuse_before_parsing(data: bytes) -> None:
    """Refuse a file that is too large or declares a DOCTYPE, before any parser sees it."""
    if len(data) > MAX_DIAGRAM_BYTES:
        raise DiagramError(
            "The diagram is too large.",
            [problem_at(f"The diagram is larger than {MAX_DIAGRAM_BYTES // 1024} KiB.")],
        )
    prolog = _prolog_text(data)
    declared = _PROLOG_DOCTYPE.match(prolog)
    if declared:
        raise _refuse_doctype(prolog.count("\n", 0, declared.end()) + 1)


def _parse(data: bytes) -> etree._Element:
    """The document's root, parsed with entities, DTDs and network access refused."""
    parser = etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False, huge_tree=False
    )
    try:
        return etree.fromstring(data, parser)
    except etree.XMLSyntaxError as exc:
        message = exc.msg
        if "XML_PARSE_HUGE" in message or "depth" in message.lower():
            message = "the elements are nested too deeply (a BPMN diagram needs a few levels, not hundreds)."
        elif "amplification" in message.lower():
            message = "the document expands too much as it is read."
        raise DiagramError(
            "The diagram is not well-formed XML.", [problem_at(f"XML error: {message}", line=exc.lineno)]
        )


def _refuse_what_was_parsed(root: etree._Element) -> None:
    """Refuse a DOCTYPE the prolog hid, too many elements, entity references, and what is not BPMN 2.0."""
    if root.getroottree().docinfo.doctype:
        raise _refuse_doctype(1)
    for count, node in enumerate(root.iter(), 1):
        if count > MAX_DIAGRAM_ELEMENTS:
            # The schema check's error list grows quadratically with a file wrong on every line; no procedure
            # comes near this (the largest shipped diagram, drawing included, has under 600 elements).
            raise DiagramError(
                "The diagram is too large.",
                [
                    problem_at(
                        f"The diagram has more than {MAX_DIAGRAM_ELEMENTS:,} XML elements; "
                        "a procedure needs far fewer.",
                        line=node.sourceline,
                    )
                ],
            )
        if isinstance(node, etree._Entity):
            raise DiagramError(
                "The diagram uses XML entities, which are not allowed.",
                [problem_at("XML entity references are not allowed.", line=node.sourceline)],
            )
    if etree.QName(root).namespace != BPMN_NS or etree.QName(root).localname != "definitions":
        raise DiagramError(
            "The file is not a BPMN 2.0 diagram.",
            [
                problem_at(
                    f'The document\'s root element is "{etree.QName(root).localname}"; a BPMN 2.0 '
                    f'diagram starts with "definitions" in the namespace {BPMN_NS}.',
                    line=root.sourceline,
                )
            ],
        )


def parse_xml_safely(data: bytes) -> etree._Element:
    """Parse diagram XML with entities, DTDs and network access refused; raise DiagramError on any problem.

    The size and a DOCTYPE (the only way entities, and XXE, get in) are refused before any parsing;
    the parser itself resolves nothing either, as a second line.
    """
    _refuse_before_parsing(data)
    root = _parse(data)
    _refuse_what_was_parsed(root)
    return root
