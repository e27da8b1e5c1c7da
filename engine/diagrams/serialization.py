"""Workflow state as JSON without the spec: the spec comes from the cache, keyed by the diagram's hash.

The state is pruned as it is stored (engine/diagrams/pruning.py): what the engine no longer needs of a long
history goes, and the elements those tasks passed through are kept by name under PRUNED_KEY, so that a
request's diagram still marks them as passed.
"""

from __future__ import annotations

import json
from uuid import UUID
from weakref import WeakKeyDictionary

from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
from SpiffWorkflow.bpmn.serializer.default.workflow import BpmnWorkflowConverter, WorkflowConverter
from SpiffWorkflow.bpmn.serializer.helpers.encoder import create_encoder
from SpiffWorkflow.spiff.serializer.config import SPIFF_CONFIG

from engine.diagrams.loading import LoadedSpec
from engine.diagrams.pruning import prune
from engine.diagrams.sandbox import SCRIPT_ENGINE

FORMAT_KEY = "serializer_version"
# civicflow's own key in the stored state: the BPMN ids of the elements completed by tasks pruned from it.
PRUNED_KEY = "civicflow_pruned_elements"


class SpecFreeWorkflowConverter(BpmnWorkflowConverter):
    """SpiffWorkflow's workflow converter, minus the spec (a third of the size, half the load time)."""

    def to_dict(self, workflow):
        """The workflow's tasks, data, subprocesses and events, without the spec."""
        dct = WorkflowConverter.to_dict(self, workflow)
        dct["subprocesses"] = self.mapping_to_dict(workflow.subprocesses)
        dct["bpmn_events"] = self.registry.convert(workflow.bpmn_events)
        return dct

    def from_dict(self, dct, spec=None, subprocess_specs=None):
        """Rebuild a workflow around the spec objects given by the caller."""
        workflow = self.target_class(spec, subprocess_specs, deserializing=True)
        workflow.tasks = self.mapping_from_dict(dct["tasks"], UUID, workflow=workflow)
        workflow.task_tree = workflow.tasks.get(UUID(dct["root"]))
        self.set_default_attributes(workflow, dct)
        self.subprocesses_from_dict(dct["subprocesses"], workflow)
        workflow.bpmn_events = self.registry.restore(dct.pop("bpmn_events", []))
        return workflow


_config = dict(SPIFF_CONFIG)
_config[BpmnWorkflow] = SpecFreeWorkflowConverter
SERIALIZER = BpmnWorkflowSerializer(BpmnWorkflowSerializer.configure(_config))
# Task data is left to the encoder by SpiffWorkflow's converters (datetimes, timedeltas, UUIDs).
_ENCODER = create_encoder(SERIALIZER.registry)
# The elements pruned so far from each workflow in memory: read by loads, added to by dumps.
_PRUNED: WeakKeyDictionary[BpmnWorkflow, frozenset[str]] = WeakKeyDictionary()


def new_workflow(loaded: LoadedSpec) -> BpmnWorkflow:
    """A fresh workflow of a spec, running its expressions in the sandbox."""
    return BpmnWorkflow(loaded.spec, loaded.subprocess_specs, script_engine=SCRIPT_ENGINE)


def dumps(workflow: BpmnWorkflow) -> str:
    """The workflow's state as JSON text (no spec), pruned of the finished tasks the engine no longer needs.

    Pruning changes the workflow itself, as storing and loading it would.
    """
    pruned = pruned_elements(workflow) | prune(workflow)
    dct = SERIALIZER.to_dict(workflow)
    dct[FORMAT_KEY] = SERIALIZER.VERSION
    if pruned:
        _PRUNED[workflow] = frozenset(pruned)
        dct[PRUNED_KEY] = sorted(pruned)
    return json.dumps(dct, separators=(",", ":"), cls=_ENCODER)


def loads(text: str, loaded: LoadedSpec) -> BpmnWorkflow:
    """Rebuild a workflow from its stored state and its cached spec."""
    dct = json.loads(text)
    dct.pop(FORMAT_KEY, None)
    pruned = dct.pop(PRUNED_KEY, None)
    workflow = SERIALIZER.from_dict(dct, spec=loaded.spec, subprocess_specs=loaded.subprocess_specs)
    workflow.script_engine = SCRIPT_ENGINE
    if pruned:
        _PRUNED[workflow] = frozenset(pruned)
    return workflow


def pruned_elements(workflow: BpmnWorkflow) -> set[str]:
    """The BPMN ids of the elements the workflow passed through in tasks since pruned from its state."""
    return set(_PRUNED.get(workflow, ()))
