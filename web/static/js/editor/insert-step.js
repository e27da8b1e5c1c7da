// Inserting a step on a flow in one action: "Insert a step after this one" in the context pad of a flow, or of an
// element with one flow out, (and the toolbar's button, for the selected one) makes room to the right of where the
// flow starts (what follows moves right, the pool and its lanes grow, as bpmn-js's space tool does it), puts a new
// user task there, in the flow: the flow ends at the new task (its name and condition stay with it) and a new flow
// leads on from the task to where the flow went. One step of the undo stack; the new task is selected to be named.
import { inOneStep, modeler, modeling, registry, selection } from "./modeler.js";

const TASK = { width: 100, height: 80 };
const GAP = 50;  // between the new task and what it is put between

function isFlow(element) {
  return !!element && element.type === "bpmn:SequenceFlow";
}

// The flow a step would be inserted on for this element: the flow itself, or the only flow out of it.
export function flowToInsertOn(element) {
  if (!element) return null;
  if (isFlow(element)) return element;
  const outgoing = (element.outgoing || []).filter(isFlow);
  return outgoing.length === 1 && !element.labelTarget ? outgoing[0] : null;
}

// Everything at the right of x moves right by dx; the containers across x (pool, lanes) grow.
function makeRoomAfter(x, dx) {
  const elements = registry.filter(function (e) { return !!e.parent; });
  const adjustments = modeler.get("spaceTool").calculateAdjustments(elements, "x", dx, x);
  modeling.createSpace(adjustments.movingShapes, adjustments.resizingShapes, { x: dx, y: 0 }, "e", x);
}

// Insert a new user task on the flow; returns it.
export function insertStepOn(flow) {
  const source = flow.source, target = flow.target;
  const start = source.x + source.width;
  let task = null;
  inOneStep(function () {
    makeRoomAfter(start + 1, TASK.width + GAP);
    const shape = modeler.get("elementFactory").createShape({ type: "bpmn:UserTask" });
    const centre = { x: start + GAP + TASK.width / 2, y: source.y + source.height / 2 };
    task = modeling.createShape(shape, centre, source.parent);
    modeling.reconnectEnd(flow, task, { x: task.x, y: centre.y });
    modeling.connect(task, target, { type: "bpmn:SequenceFlow" });
  });
  selection.select(task);
  return task;
}

// bpmn-js's context pad gets the entry (a diagram-js module: the modeler builds it with the services it names).
function InsertStepPad(contextPad) {
  contextPad.registerProvider(this);
}
InsertStepPad.$inject = ["contextPad"];

InsertStepPad.prototype.getContextPadEntries = function (element) {
  const flow = flowToInsertOn(element);
  if (!flow) return {};
  return {
    "civicflow-insert-step": {
      group: "model",
      className: "bpmn-icon-user-task civicflow-insert-step",
      title: isFlow(element) ? "Insert a step on this flow" : "Insert a step after this one",
      action: { click: function () { insertStepOn(flow); } }
    }
  };
};

export const insertStepModule = {
  __init__: ["civicflowInsertStep"],
  civicflowInsertStep: ["type", InsertStepPad]
};
