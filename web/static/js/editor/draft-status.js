// What the page says about the draft: its revision and when it was saved (#draft-state, under the heading), and
// whether it can be published (the Publish section's button and revision; the sentence saying so is the problem
// list's, problem-list.js).
import { state } from "./state.js";

const draftState = document.getElementById("draft-state");
const publishButton = document.getElementById("publish");
const publishRevision = document.getElementById("publish-revision");

function pad(number) { return (number < 10 ? "0" : "") + number; }

// HH:MM of an ISO time in the browser's time zone (now, when there is none or it cannot be read).
export function clockTime(iso) {
  let when = iso ? new Date(iso) : new Date();
  if (isNaN(when.getTime())) when = new Date();
  return pad(when.getHours()) + ":" + pad(when.getMinutes());
}

export function showDraftSaved(savedAt) {
  if (draftState && state.revision) {
    draftState.textContent = "draft revision " + state.revision + ", saved at " + clockTime(savedAt);
  }
}

export function showPublishable() {
  publishButton.classList.toggle("looks-disabled", !state.publishable);
  if (publishRevision) publishRevision.value = state.revision === null ? "" : String(state.revision);
}
