// The problems that block publishing (#problem-list), as the server lists them on the page: the element's name in
// bold, then where it is ("(element id, line 3)"; "Line 3" alone for a problem of the file), then the message. Once
// the diagram is open, a problem at an element is a button that shows that element in the diagram and the panel.
import { node } from "./dom.js";
import { centerOn, reveal } from "./diagram-view.js";
import { canvas, modeler, registry, selection } from "./modeler.js";
import { focusHeading, renderPanel } from "./properties-panel.js";
import { state } from "./state.js";
import { say } from "./status.js";

const problemList = document.getElementById("problem-list");

// The shape a problem names: the element itself, or the shape holding what it names (a timer, a condition, the
// process of a pool).
function findShape(id) {
  const shape = registry.get(id);
  if (shape) return shape;
  return registry.filter(function (e) {
    const bo = e.businessObject;
    if (!bo || e.labelTarget) return false;
    if (bo.processRef && bo.processRef.id === id) return true;
    if (bo.conditionExpression && bo.conditionExpression.id === id) return true;
    if (bo.loopCharacteristics && bo.loopCharacteristics.id === id) return true;
    return (bo.eventDefinitions || []).some(function (d) { return d.id === id; });
  })[0] || null;
}

// Select the element (or the shape holding it) and show it in the panel. options.missing: what to say when it is not
// in the diagram; options.center: put it in the middle of the view at its actual size, not only in view.
export function showElement(id, options) {
  const shape = findShape(id);
  if (!shape) {
    say((options && options.missing) || "The element " + id + " is not in the diagram on screen (it may have been " +
        "removed since the last save).", "warn");
    return;
  }
  if (shape === canvas.getRootElement()) {
    selection.select(null);
  } else {
    if (options && options.center) centerOn(shape); else reveal(shape);
    selection.select(shape);
  }
  renderPanel();
  focusHeading();
}

function problemItem(problem, index) {
  const where = [];
  if (problem.element) where.push(problem.element);
  if (problem.line) where.push("line " + problem.line);
  const title = problem.name || problem.element || "";
  const messageId = "problem-" + index + "-message";
  const message = node("span", { className: "message", id: messageId, text: problem.message });
  if (problem.element && modeler) {
    const button = node("button", { type: "button", className: "link-like", "data-element": problem.element,
                                    "aria-describedby": messageId }, [
      node("strong", { text: title }), where.length ? " (" + where.join(", ") + ")" : ""
    ]);
    button.addEventListener("click", function () { showElement(problem.element); });
    return node("li", {}, [button, ": ", message]);
  }
  if (!title) {
    return node("li", {}, [problem.line ? "Line " + problem.line + ": " : null, message]);
  }
  return node("li", {}, [node("strong", { text: title }), where.length ? " (" + where.join(", ") + ")" : null, ": ",
    message]);
}

// One sentence on where the draft stands, as the page says it (processes/edit.html): its problems (the dry run's
// included), no draft yet, or that it can be published; then the problems, if any.
export function renderProblems(problems) {
  problemList.textContent = "";
  const count = problems ? problems.length : 0;
  if (count) {
    problemList.appendChild(node("p", { className: "verdict", id: "draft-verdict",
      text: count + (count === 1 ? " problem" : " problems") +
            " must be fixed and saved before this draft can be published:" }));
    problemList.appendChild(node("ul", { className: "problems" }, problems.map(problemItem)));
  } else if (!state.revision) {
    problemList.appendChild(node("p", { className: "verdict", id: "draft-verdict",
      text: "There is no draft yet: the diagram shown is the version in use. Change it and save it to start a draft." }));
  } else {
    problemList.appendChild(node("p", { className: "ok", id: "draft-verdict",
      text: "No problems: this draft can be published." }));
  }
}
