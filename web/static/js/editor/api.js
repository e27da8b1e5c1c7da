// The editor's requests to the server: the diagram and the moddle extension it opens, and saving the draft.
import { config } from "./config.js";

// A file's text (or its JSON); a refusal is an error naming the URL and the status.
export function fetchOk(url, as) {
  return fetch(url, { credentials: "same-origin" }).then(function (response) {
    if (!response.ok) throw new Error(url + " answered " + response.status);
    return as === "json" ? response.json() : response.text();
  });
}

// Saves the diagram as the draft: PUT with the CSRF token, and If-Match the revision it was based on (none when there
// is no draft yet). Resolves to the response and its JSON body (null when the body is not JSON).
export function putDraft(xml, revision) {
  const headers = { "Content-Type": "application/xml", "X-CSRFToken": config.csrf_token, "Accept": "application/json" };
  if (revision !== null) headers["If-Match"] = "\"" + revision + "\"";
  return fetch(config.save_url, { method: "PUT", headers: headers, body: xml, credentials: "same-origin" })
    .then(function (response) {
      return response.json().then(function (data) { return { response: response, data: data }; },
                                  function () { return { response: response, data: null }; });
    });
}
