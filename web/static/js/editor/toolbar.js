// The toolbar's undo, redo, insert-a-step and zoom buttons (Save draft is saving.js's).
import { fitDiagram, zoomIn, zoomOut } from "./diagram-view.js";
import { flowToInsertOn, insertStepOn } from "./insert-step.js";
import { commandStack, eventBus, selection } from "./modeler.js";

const undoButton = document.getElementById("undo");
const redoButton = document.getElementById("redo");
const insertButton = document.getElementById("insert-step");

// The flow the selection would get a step on (a flow, or an element with one flow out), if one is selected.
function selectedFlow() {
  const selected = selection.get();
  return selected.length === 1 ? flowToInsertOn(selected[0]) : null;
}

// Once the diagram is open.
export function setUpToolbar() {
  eventBus.on("commandStack.changed", function () {
    undoButton.disabled = !commandStack.canUndo();
    redoButton.disabled = !commandStack.canRedo();
  });
  eventBus.on(["selection.changed", "commandStack.changed"], function () {
    insertButton.disabled = !selectedFlow();
  });
  insertButton.addEventListener("click", function () {
    const flow = selectedFlow();
    if (flow) insertStepOn(flow);
  });
  undoButton.addEventListener("click", function () { commandStack.undo(); });
  redoButton.addEventListener("click", function () { commandStack.redo(); });
  document.getElementById("zoom-in").addEventListener("click", zoomIn);
  document.getElementById("zoom-out").addEventListener("click", zoomOut);
  document.getElementById("zoom-fit").addEventListener("click", fitDiagram);
}
