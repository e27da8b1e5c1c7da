// The Publish form: what is on screen is saved first; without the diagram open, the server judges the stored draft.
import { saved } from "./saving.js";
import { state } from "./state.js";
import { say } from "./status.js";

const publishForm = document.getElementById("publish-form");

export function setUpPublishing() {
  if (!publishForm) return;
  publishForm.addEventListener("submit", function (event) {
    if (state.leaving || !state.ready) return;
    event.preventDefault();
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
