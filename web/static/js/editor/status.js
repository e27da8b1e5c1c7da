// The status line of the toolbar (#save-status, a live region): what saving and the editor have to say.
const statusNode = document.getElementById("save-status");

// kind: "ok", "warn" or "error" (a class); extra: a node after the message, such as a download link.
export function say(message, kind, extra) {
  statusNode.textContent = "";
  statusNode.className = "save-status" + (kind ? " " + kind : "");
  statusNode.appendChild(document.createTextNode(message));
  if (extra) {
    statusNode.appendChild(document.createTextNode(" "));
    statusNode.appendChild(extra);
  }
}
