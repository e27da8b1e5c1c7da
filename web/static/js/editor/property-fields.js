// The fields of the properties panel for each kind of element: the process, a pool, a lane (its role), a user task
// (its form and deadline), a flow out of a gateway (its condition), a timer (its expression), and the facts that are
// only set in the .bpmn file. Each control changes the diagram through changes.js.
import { config } from "./config.js";
import { node } from "./dom.js";
import {
  expressionText, is, laneOf, roleOfLaneName, rootProcess, spiffExtension, spiffProperty, timerKindOf, timerOf
} from "./model.js";
import { setCondition, setDefaultFlow, setLaneRole, setName, setSpiffProperty, setTimer } from "./changes.js";
import { state } from "./state.js";

const TIMER_KINDS = [["timeDate", "At a date and time"], ["timeDuration", "After a duration"]];

// ---- controls ----

function field(id, label, control, hint, extraClass) {
  if (hint) control.setAttribute("aria-describedby", id + "-hint");
  return node("div", { className: "field" + (extraClass ? " " + extraClass : "") }, [
    node("label", { "for": id, text: label }),
    control,
    hint ? node("p", { className: "hint", id: id + "-hint", text: hint }) : null
  ]);
}

function warning(text) { return node("p", { className: "warn", text: text }); }

function textInput(id, value, onChange, readOnly) {
  const input = node("input", { type: "text", id: id, value: value || "", readOnly: readOnly, autocomplete: "off",
                                spellcheck: readOnly ? "false" : null });
  if (onChange) input.addEventListener("change", function () { onChange(input.value); });
  return input;
}

// options: [value, label] pairs.
function select(id, options, value, onChange) {
  const control = node("select", { id: id }, options.map(function (option) {
    return node("option", { value: option[0], text: option[1], selected: option[0] === value });
  }));
  control.value = value;
  control.addEventListener("change", function () { onChange(control.value); });
  return control;
}

// The options, with the value the diagram has added when it is not one of them (labelled as unknown).
function knownOption(options, value, unknownLabel) {
  if (value && !options.some(function (option) { return option[0] === value; })) {
    options.push([value, unknownLabel.replace("%s", value)]);
  }
  return options;
}

// ---- fields by kind of element ----

export function idField(bo) { return field("prop-id", "Id", textInput("prop-id", bo.id, null, true)); }

export function nameField(element, bo, label) {
  return field("prop-name", label || "Name", textInput("prop-name", bo.name, function (value) { setName(element, value); }));
}

export function processFields(element) {
  const process = rootProcess();
  if (!process) return [node("p", { className: "hint", text: "This diagram has no process." })];
  return [
    node("p", { className: "hint",
                text: "Nothing is selected: this is the process. Select an element in the diagram to edit it." }),
    field("prop-id", "Process id", textInput("prop-id", process.id, null, true),
          "The procedure's key; it cannot be changed here."),
    field("prop-name", "Name", textInput("prop-name", process.name, function (value) { setName(element, value); }))
  ];
}

export function participantFields(element, bo) {
  return [
    idField(bo),
    nameField(element, bo),
    bo.processRef ? field("prop-process-id", "Process id", textInput("prop-process-id", bo.processRef.id, null, true),
                          "The procedure's key; it cannot be changed here.") : null
  ];
}

export function laneFields(element, bo) {
  const role = roleOfLaneName(bo.name);
  const options = (config.lanes || []).map(function (lane) { return [lane.name, lane.name]; });
  if (!role) options.unshift(["", "Choose a role"]);
  return [
    idField(bo),
    !role ? warning(bo.name ? "This lane is named \u201c" + bo.name + "\u201d, which is not a role: choose the role whose tasks it holds."
                            : "This lane has no role yet: choose the role whose tasks it holds.") : null,
    field("prop-lane-role", "Role", select("prop-lane-role", options, role ? role.name : "", function (value) {
      setLaneRole(element, value);
    }), "The tasks drawn in this lane are done by this role.")
  ];
}

export function userTaskFields(element, bo) {
  const lane = laneOf(element);
  const role = lane && roleOfLaneName(lane.businessObject.name);
  const formKey = (spiffProperty(bo, "formKey") || {}).value || "";
  const deadline = (spiffProperty(bo, "deadline") || {}).value || "";
  const formOptions = [["", "Choose a form"]].concat((config.form_keys || []).map(function (form) {
    return [form.key, form.label];
  }));
  const deadlineOptions = [["", "No deadline"]].concat((config.deadlines || []).map(function (d) {
    return [d.kind, d.label];
  }));
  const formKnown = !formKey || (config.form_keys || []).some(function (f) { return f.key === formKey; });
  const deadlineKnown = !deadline || (config.deadlines || []).some(function (d) { return d.kind === deadline; });
  const laneText = !lane ? "In no lane"
    : role ? role.name + " (role " + role.role + ")"
    : "Lane \u201c" + (lane.businessObject.name || "") + "\u201d, which is not a role";
  return [
    idField(bo),
    nameField(element, bo),
    field("prop-task-lane", "Done by", node("output", { id: "prop-task-lane", className: "fact", text: laneText }),
          "Follows from the lane the task is drawn in: drag it into another lane to change it."),
    !lane ? warning("Move this task into the lane of the role who does it.") : null,
    field("prop-form-key", "Form", select("prop-form-key", knownOption(formOptions, formKey, "%s (no such form)"), formKey,
      function (value) { setSpiffProperty(element, "formKey", value); }),
      "What the person doing the task fills in."),
    !formKey ? warning("Choose a form: a user task without one cannot be published.") : null,
    !formKnown ? warning("The form \u201c" + formKey + "\u201d does not exist in this procedure.") : null,
    field("prop-deadline", "Due date", select("prop-deadline", knownOption(deadlineOptions, deadline, "%s (no such deadline)"),
      deadline, function (value) { setSpiffProperty(element, "deadline", value); }),
      "The task is due that many business days after it arrives. Timers on the task that name a deadline must name this one."),
    !deadlineKnown ? warning("The deadline \u201c" + deadline + "\u201d is not one of the City's deadlines.") : null
  ];
}

export function conditionFields(element, bo) {
  const gateway = element.source.businessObject;
  const isDefault = gateway["default"] === bo;
  const condition = node("textarea", { id: "prop-condition", rows: "3", spellcheck: "false", className: "code",
                                       disabled: isDefault }, []);
  condition.value = expressionText(bo.conditionExpression);
  condition.addEventListener("change", function () { setCondition(element, condition.value); });
  const defaultBox = node("input", { type: "checkbox", id: "prop-default", checked: isDefault,
                                     "aria-describedby": "prop-default-hint" });
  defaultBox.addEventListener("change", function () { setDefaultFlow(element, defaultBox.checked); });
  return [
    idField(bo),
    nameField(element, bo, "Label"),
    field("prop-condition", "Condition", condition,
          isDefault ? "This is the default flow: it is taken when no other flow's condition holds, so it has no condition."
                    : "A Python expression on the request's data, e.g. decision == \"approve\". This flow is taken " +
                      "when it is true."),
    node("div", { className: "field check" }, [
      defaultBox,
      node("label", { "for": "prop-default", text: "Default flow" }),
      node("p", { className: "hint", id: "prop-default-hint", text: "Taken when no other flow's condition holds." })
    ]),
    !isDefault && !bo.conditionExpression ? warning("This flow has no condition.") : null
  ];
}

export function timerFields(element, bo) {
  const definition = timerOf(bo);
  let kind = timerKindOf(definition);
  const value = expressionText(definition[kind]);
  if (!value && state.timerKinds[element.id]) kind = state.timerKinds[element.id];
  const options = TIMER_KINDS.slice();
  if (kind === "timeCycle") options.push(["timeCycle", "Repeating (not supported)"]);
  const valueInput = textInput("prop-timer-value", value, null);
  valueInput.className = "code";
  valueInput.setAttribute("spellcheck", "false");
  const kindSelect = select("prop-timer-type", options, kind, function (chosen) {
    setTimer(element, chosen, valueInput.value);
  });
  valueInput.addEventListener("change", function () { setTimer(element, kindSelect.value, valueInput.value); });
  const attached = bo.attachedToRef;
  const example = (attached && (spiffProperty(attached, "deadline") || {}).value) ||
                  ((config.deadlines || [])[0] || {}).kind || "appeal_response";
  const helpers = (config.timer_helpers || []).map(function (h) { return h + "(\"\u2026\")"; }).join(", ");
  return [
    field("prop-timer-type", "Timer", kindSelect),
    kind === "timeCycle" ? warning("Repeating timers are not supported: choose a date or a duration.") : null,
    field("prop-timer-value", "Value", valueInput,
          "A Python expression. At a date and time: " + helpers + " with the deadline of the task, e.g. " +
          "reminder_time(\"" + example + "\"). After a duration: an ISO 8601 duration in quotes, e.g. \"P2D\" " +
          "(two days)."),
    !value ? warning("This timer has no value yet.") : null
  ];
}

// What the panel cannot change (a service task's operator and parameters, a script), or null.
export function readOnlyFacts(bo) {
  const facts = [];
  const operator = spiffExtension(bo, "ServiceTaskOperator");
  if (operator) {
    facts.push(["Service", operator.id || "(none)"]);
    ((operator.parameterList && operator.parameterList.parameters) || []).forEach(function (p) {
      facts.push(["Parameter " + p.id, p.value || ""]);
    });
  }
  if (is(bo, "bpmn:ScriptTask") && bo.script) facts.push(["Script", bo.script]);
  if (!facts.length) return null;
  return node("div", { className: "facts" }, [
    node("p", { className: "hint", text: "Set in the .bpmn file (download, edit, upload):" }),
    node("dl", {}, facts.reduce(function (items, fact) {
      return items.concat([node("dt", { text: fact[0] }), node("dd", { className: "code", text: fact[1] })]);
    }, []))
  ]);
}
