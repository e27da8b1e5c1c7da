// The Publish form: it needs the confirmation and a note (the server asks again without them); what is on screen is
// saved first; without the diagram open, the server judges the stored draft.
import { saved } from "./saving.js";
import { state } from "./state.js";
import { say } from "./status.js";

const publishForm = document.getElementById("publish-form");

// What the form still needs, said next to the field and on the status line: false when something is missing.
function asked() {
  const note = publishForm.elements.note, confirm = publishForm.elements.confirm;
  const missing = !note.value.trim() ? note : !confirm.checked ? confirm : null;
  if (!missing) return true;
  say(missing === note
    ? "Not published: say in a sentence what changed and why (it is kept with the version)."
    : "Not published: tick the box to confirm that this draft is to be published.", "warn");
  missing.focus();
  return false;
}

export function setUpPublishing() {
  if (!publishForm) return;
  publishForm.addEventListener("submit", function (event) {
    if (state.leaving || !state.ready) return;
    event.preventDefault();
    if (!asked()) return;
    saved().then(function (ok) {
      if (!ok) return;
      if (!state.revision) {
        say("There is no draft to publish: the diagram on screen is the version in use.", "warn");
        return;
      }
      state.leaving = true;
      publishForm.submit();
    });
  });
}
