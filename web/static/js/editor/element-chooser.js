// The element chooser (#prop-element): every element by type and name, so that the keyboard reaches each one.
// Choosing one selects it in the diagram (and so shows it in the properties panel).
import { node } from "./dom.js";
import { reveal } from "./diagram-view.js";
import { canvas, registry, selection } from "./modeler.js";
import { is, typeName } from "./model.js";

const chooser = document.getElementById("prop-element");
let chooserList = "";  // the options shown, as JSON: they are only rebuilt when they change

function fillChooser() {
  const root = canvas.getRootElement();
  const entries = registry.filter(function (e) {
    return e !== root && !e.labelTarget && e.businessObject && e.type !== "label" && !is(e, "bpmn:Collaboration");
  }).map(function (e) {
    const bo = e.businessObject;
    return [e.id, typeName(bo) + ": " + (bo.name || "(no name)") + " (" + e.id + ")"];
  }).sort(function (a, b) { return a[1].localeCompare(b[1]); });
  entries.unshift(["", "The process (nothing selected)"]);
  const list = JSON.stringify(entries);
  if (list === chooserList) return;
  chooserList = list;
  const value = chooser.value;
  chooser.textContent = "";
  entries.forEach(function (entry) { chooser.appendChild(node("option", { value: entry[0], text: entry[1] })); });
  chooser.value = value;
}

// The chooser up to date with the diagram, showing the element the panel shows (null: several are selected).
export function showInChooser(element) {
  fillChooser();
  chooser.value = element && element !== canvas.getRootElement() ? element.id : "";
}

export function setUpElementChooser() {
  chooser.addEventListener("change", function () {
    const shape = chooser.value && registry.get(chooser.value);
    if (shape) {
      reveal(shape);
      selection.select(shape);
    } else {
      selection.select(null);
    }
  });
}
