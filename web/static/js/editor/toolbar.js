// The toolbar's undo, redo and zoom buttons (Save draft is saving.js's).
import { fitDiagram, zoomIn, zoomOut } from "./diagram-view.js";
import { commandStack, eventBus } from "./modeler.js";

const undoButton = document.getElementById("undo");
const redoButton = document.getElementById("redo");

// Once the diagram is open.
export function setUpToolbar() {
  eventBus.on("commandStack.changed", function () {
    undoButton.disabled = !commandStack.canUndo();
    redoButton.disabled = !commandStack.canRedo();
  });
  undoButton.addEventListener("click", function () { commandStack.undo(); });
  redoButton.addEventListener("click", function () { commandStack.redo(); });
  document.getElementById("zoom-in").addEventListener("click", zoomIn);
  document.getElementById("zoom-out").addEventListener("click", zoomOut);
  document.getElementById("zoom-fit").addEventListener("click", fitDiagram);
}
