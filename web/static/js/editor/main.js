// The administrators' diagram editor: bpmn-js's modeler, civicflow's own properties panel (lanes as roles, a user
// task's form and deadline, a gateway's conditions, a timer's expression), saving the draft and its problem list.
// Every change goes through bpmn-js's modeling commands, so that it can be undone and is in the exported XML.
//
// The entry point, loaded by processes/edit.html as a module: it wires the page's controls, then opens the diagram.
import { fetchOk } from "./api.js";
import { config, moddleUrl } from "./config.js";
import { fitDiagram } from "./diagram-view.js";
import { node } from "./dom.js";
import { showPublishable } from "./draft-status.js";
import { setUpElementChooser } from "./element-chooser.js";
import { modelerLoaded, openModeler } from "./modeler.js";
import { renderProblems, showElement } from "./problem-list.js";
import { clearPanel, followDiagram, renderPanel, setUpPropertiesPanel } from "./properties-panel.js";
import { setUpPublishing } from "./publishing.js";
import { setUpSaving } from "./saving.js";
import { state } from "./state.js";
import { say } from "./status.js";
import { setUpToolbar } from "./toolbar.js";
import { countChanges, setUpUnsavedChangesWarning } from "./unsaved-changes.js";

const canvasNode = document.getElementById("canvas");

// What of the diagram bpmn-js could not read (and saving would drop).
function showImportWarnings(warnings) {
  if (!warnings || !warnings.length) return;
  const warningsNode = document.getElementById("import-warnings");
  warningsNode.hidden = false;
  warningsNode.textContent = "";
  warningsNode.appendChild(node("p", {
    text: "Parts of this diagram could not be read by the editor; saving it would drop them:"
  }));
  warningsNode.appendChild(node("ul", {}, warnings.map(function (w) { return node("li", { text: w.message }); })));
}

// ?element=<id> opens the editor at that element (the incident page links to the step that failed).
function showLinkedElement() {
  const id = new URLSearchParams(window.location.search).get("element");
  if (!id) return;
  showElement(id, {
    center: true,
    missing: "The element " + id + " the link asked for is not in this diagram (it may have been removed, or it " +
             "has no shape in the drawing)."
  });
}

function start() {
  if (!config || !canvasNode || !document.getElementById("properties")) return;
  setUpPropertiesPanel();
  setUpSaving();
  setUpPublishing();
  setUpUnsavedChangesWarning();

  if (!modelerLoaded()) {
    say("The diagram editor (bpmn-js) could not be loaded.", "error");
    return;
  }

  Promise.all([fetchOk(moddleUrl(), "json"), fetchOk(config.xml_url, "text")]).then(function (loaded) {
    return openModeler(canvasNode, loaded[0]).importXML(loaded[1]);
  }).then(function (result) {
    showImportWarnings(result.warnings);
    fitDiagram();
    countChanges();
    setUpToolbar();
    followDiagram();
    setUpElementChooser();
    renderPanel();
    renderProblems(config.problems || []);
    showPublishable();
    showLinkedElement();
    state.ready = true;
    canvasNode.dataset.ready = "true";
  }).catch(function (failure) {
    canvasNode.dataset.ready = "false";
    clearPanel();
    say("The diagram could not be opened: " + (failure && failure.message ? failure.message : failure) +
        ". Upload a corrected .bpmn file below, or discard the draft.", "error");
  });
}

start();
