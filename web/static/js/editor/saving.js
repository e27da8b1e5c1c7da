// Saving the diagram on screen as the draft: the Save draft button and Ctrl+S. A save shows the draft's problems
// and whether it can be published; a refused one says why, and offers the diagram on screen as a download.
import { putDraft } from "./api.js";
import { config } from "./config.js";
import { node } from "./dom.js";
import { clockTime, showDraftSaved, showPublishable } from "./draft-status.js";
import { modeler } from "./modeler.js";
import { renderProblems } from "./problem-list.js";
import { state } from "./state.js";
import { say } from "./status.js";
import { isDirty } from "./unsaved-changes.js";

const saveButton = document.getElementById("save-draft");
const panel = document.getElementById("properties");

function downloadLink(xml) {
  const url = URL.createObjectURL(new Blob([xml], { type: "application/xml" }));
  return node("a", { href: url, download: config.key + ".bpmn", text: "Download the diagram on screen" });
}

// Resolves to whether the draft was saved. A save under way is not started again.
export function save() {
  if (state.saving) return state.saving;
  const depthAtExport = state.depth;
  let xml = null;
  saveButton.setAttribute("aria-busy", "true");
  say("Saving\u2026");
  state.saving = modeler.saveXML({ format: true }).then(function (result) {
    xml = result.xml;
    return putDraft(xml, state.revision);
  }).then(function (answer) {
    const response = answer.response, data = answer.data || {};
    if (response.ok) {
      state.revision = data.revision === undefined ? state.revision : data.revision;
      state.publishable = !!data.publishable;
      state.savedDepth = depthAtExport;
      renderProblems(data.problems || []);
      showPublishable();
      const count = (data.problems || []).length;
      showDraftSaved(data.saved_at);
      say("Draft saved at " + clockTime(data.saved_at) + "." +
          (count ? " " + count + (count === 1 ? " problem blocks" : " problems block") + " publishing." : ""), "ok");
      return true;
    }
    const error = data.error || {};
    if (response.status === 409) {
      say("Not saved: someone else saved this draft after you opened it. " + (error.message ||
          "Download the diagram on screen, then reload the page to see theirs."), "error", downloadLink(xml));
    } else if (error.code === "invalid_diagram") {
      renderProblems(error.problems || []);
      say("Not saved: " + (error.message || "the diagram was refused.") + " The problems are listed below; the " +
          "saved draft is unchanged.", "error");
    } else {
      say("Not saved: " + (error.message || "the server answered " + response.status + " " + response.statusText + ".") +
          " If your session has ended, download the diagram on screen, log in again and upload it.", "error",
          downloadLink(xml));
    }
    return false;
  }).catch(function (failure) {
    say("Not saved: " + (failure && failure.message ? failure.message : "the server could not be reached") + ".", "error",
        xml ? downloadLink(xml) : null);
    return false;
  }).then(function (ok) {
    state.saving = null;
    saveButton.removeAttribute("aria-busy");
    return ok;
  });
  return state.saving;
}

// What is on screen, saved: waits for a save under way, then saves what changed since.
export function saved() {
  return Promise.resolve(state.saving).then(function (ok) {
    if (ok === false) return false;
    return isDirty() ? save() : true;
  });
}

export function setUpSaving() {
  saveButton.addEventListener("click", function () {
    if (state.ready) save();
    else say("The diagram is not open in the editor: there is nothing to save.", "error");
  });
  document.addEventListener("keydown", function (event) {
    if ((event.ctrlKey || event.metaKey) && !event.altKey && (event.key === "s" || event.key === "S")) {
      event.preventDefault();
      if (state.ready) {
        // Leaving the field commits what is being typed in it first.
        if (document.activeElement && panel.contains(document.activeElement)) document.activeElement.blur();
        save();
      }
    }
  });
}
