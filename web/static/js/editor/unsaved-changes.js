// Changes not saved yet: counted on bpmn-js's undo stack, and a warning before the page is left with any.
import { eventBus } from "./modeler.js";
import { state } from "./state.js";

export function isDirty() { return state.depth !== state.savedDepth; }

// Undoing back to what was saved leaves nothing unsaved; a new change after undoing past it loses the saved state.
function countStep(trigger) {
  if (trigger === "execute") {
    if (state.depth < state.savedDepth) state.savedDepth = -1;
    state.depth += 1;
  } else if (trigger === "undo") {
    state.depth -= 1;
  } else if (trigger === "redo") {
    state.depth += 1;
  }
}

// Once the diagram is open: every step done, undone or redone.
export function countChanges() {
  eventBus.on("commandStack.changed", function (event) { countStep(event.trigger); });
}

export function setUpUnsavedChangesWarning() {
  // Uploading or discarding replaces what is on screen on purpose: no "unsaved changes" question then.
  ["upload-form", "discard-form"].forEach(function (id) {
    const form = document.getElementById(id);
    if (form) form.addEventListener("submit", function () { state.leaving = true; });
  });
  window.addEventListener("beforeunload", function (event) {
    if (state.ready && isDirty() && !state.leaving) {
      event.preventDefault();
      event.returnValue = "";
    }
  });
}
