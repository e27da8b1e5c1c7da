// The properties panel (#properties): the heading names what is selected, the body holds its fields. It is rebuilt
// on every change of the selection or the diagram, keeping the focus (and what is being typed) where it was.
import { node } from "./dom.js";
import { makeUserTask } from "./changes.js";
import { showInChooser } from "./element-chooser.js";
import { canvas, eventBus, selection } from "./modeler.js";
import { is, isConditionable, rootProcess, timerOf, typeName } from "./model.js";
import {
  conditionFields, idField, laneFields, nameField, participantFields, processFields, readOnlyFacts, timerFields,
  userTaskFields
} from "./property-fields.js";

const panel = document.getElementById("properties");
const panelHeading = document.getElementById("prop-heading");
const panelBody = document.getElementById("prop-body");
let shown = null;  // the element the panel shows
let renderPending = false;

export function focusHeading() { panelHeading.focus(); }

function makeUserTaskButton(element) {
  const button = node("button", { type: "button", id: "prop-make-user-task", text: "Make this a user task" });
  button.addEventListener("click", function () {
    makeUserTask(element);
    window.setTimeout(focusHeading, 0);
  });
  return node("div", { className: "field" }, [button,
    node("p", { className: "hint", text: "A person in the task's lane does a user task by filling in its form." })]);
}

function fieldsFor(element) {
  const bo = element.businessObject;
  if (element === canvas.getRootElement()) return processFields(element);
  if (is(bo, "bpmn:Participant")) return participantFields(element, bo);
  if (is(bo, "bpmn:Lane")) return laneFields(element, bo);
  let fields;
  if (is(bo, "bpmn:UserTask")) fields = userTaskFields(element, bo);
  else if (isConditionable(element)) fields = conditionFields(element, bo);
  else fields = [idField(bo), nameField(element, bo)];
  if (bo.$type === "bpmn:Task") fields.push(makeUserTaskButton(element));
  if (timerOf(bo)) fields = fields.concat(timerFields(element, bo));
  fields.push(readOnlyFacts(bo));
  return fields;
}

// The heading is a live region: say it again only when it changes.
function setHeading(text) {
  if (panelHeading.textContent !== text) panelHeading.textContent = text;
}

export function renderPanel() {
  const selected = selection.get().map(function (e) { return e.labelTarget || e; });
  const element = selected.length === 1 ? selected[0] : selected.length ? null : canvas.getRootElement();
  // Keep the focus (and what is being typed) in the control that had it: the panel is rebuilt on every change.
  const active = document.activeElement;
  const keep = active && panel.contains(active) && active.id ? {
    id: active.id, value: active.value, sameElement: shown === element,
    start: active.selectionStart, end: active.selectionEnd
  } : null;
  shown = element;
  showInChooser(element);
  panelBody.textContent = "";
  if (!element) {
    setHeading(selected.length + " elements selected");
    panelBody.appendChild(node("p", { className: "hint", text: "Select one element to edit its properties." }));
    return;
  }
  const bo = element === canvas.getRootElement() ? (rootProcess() || element.businessObject) : element.businessObject;
  setHeading(typeName(bo) + ": " + (bo.name || "(no name)"));
  fieldsFor(element).forEach(function (child) { if (child) panelBody.appendChild(child); });
  if (keep) {
    const again = document.getElementById(keep.id);
    if (again && panel.contains(again)) {
      if (keep.sameElement && (again.tagName === "TEXTAREA" || again.type === "text") && !again.readOnly) {
        again.value = keep.value;
      }
      again.focus();
      if (keep.sameElement && typeof keep.start === "number" && again.setSelectionRange) {
        try { again.setSelectionRange(keep.start, keep.end); } catch { /* not a text control */ }
      }
    }
  }
}

// Not while a pointer is pressed in the panel: a button rebuilt between its mousedown and its mouseup never
// gets the click (pressing "Make this a user task" ends the label editing of a new task, which changes the
// diagram and would rebuild the panel under the pointer). The rebuild waits until the click is done.
let pointerInPanel = false;
let renderWaiting = false;

function releasePointer() {
  if (!pointerInPanel) return;
  pointerInPanel = false;
  if (renderWaiting) {
    renderWaiting = false;
    window.setTimeout(scheduleRender, 0);
  }
}

panel.addEventListener("pointerdown", function () { pointerInPanel = true; }, true);
document.addEventListener("click", releasePointer, true);
document.addEventListener("pointercancel", releasePointer, true);
document.addEventListener("pointerup", function () { window.setTimeout(releasePointer, 0); }, true);

// After the event that changed the model: focus has moved by then (Tab out of a field commits it).
export function scheduleRender() {
  if (renderPending) return;
  renderPending = true;
  window.setTimeout(function () {
    renderPending = false;
    if (pointerInPanel) renderWaiting = true;
    else renderPanel();
  }, 0);
}

// The panel is a form only for its labels and keyboard: it is never submitted.
export function setUpPropertiesPanel() {
  panel.addEventListener("submit", function (event) { event.preventDefault(); });
}

// Rebuilt whenever the selection or the diagram changes (once the diagram is open).
export function followDiagram() {
  eventBus.on("selection.changed", scheduleRender);
  eventBus.on("commandStack.changed", scheduleRender);
}

// What to say when the diagram could not be opened: nothing to edit.
export function clearPanel() {
  panelBody.textContent = "";
}
