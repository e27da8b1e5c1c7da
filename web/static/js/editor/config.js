// What the page gives the editor: its configuration (the JSON in #editor-config: the procedure, its lanes, forms
// and deadlines, the draft's revision and problems, the URLs and the CSRF token) and where the spiffworkflow moddle
// extension is (the data-moddle attribute of the script tag that loads the editor; document.currentScript is null
// in a module).

const configNode = document.getElementById("editor-config");

// null when the page has no configuration: then the editor does not start.
export const config = configNode ? JSON.parse(configNode.textContent) : null;

export function moddleUrl() {
  return document.querySelector("script[data-moddle]").dataset.moddle;
}
