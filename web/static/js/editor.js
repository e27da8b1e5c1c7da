// The administrators' diagram editor: bpmn-js's modeler, civicflow's own properties panel (lanes as roles, a user
// task's form and deadline, a gateway's conditions, a timer's expression), saving the draft and its problem list.
// Every change goes through bpmn-js's modeling commands, so that it can be undone and is in the exported XML.
(function () {
  "use strict";

  var script = document.currentScript;
  var configNode = document.getElementById("editor-config");
  var canvasNode = document.getElementById("canvas");
  var statusNode = document.getElementById("save-status");
  var panel = document.getElementById("properties");
  var panelHeading = document.getElementById("prop-heading");
  var panelBody = document.getElementById("prop-body");
  var chooser = document.getElementById("prop-element");
  var problemList = document.getElementById("problem-list");
  var saveButton = document.getElementById("save-draft");
  var undoButton = document.getElementById("undo");
  var redoButton = document.getElementById("redo");
  var publishForm = document.getElementById("publish-form");
  var publishButton = document.getElementById("publish");
  var publishHint = document.getElementById("publish-hint");
  var publishRevision = document.getElementById("publish-revision");
  var draftState = document.getElementById("draft-state");
  var warningsNode = document.getElementById("import-warnings");
  if (!configNode || !canvasNode || !panel) return;

  var config = JSON.parse(configNode.textContent);
  var SPIFF = "spiffworkflow";
  var TYPE_NAMES = {
    "bpmn:Process": "Process", "bpmn:Collaboration": "Collaboration", "bpmn:Participant": "Pool",
    "bpmn:Lane": "Lane", "bpmn:Task": "Task", "bpmn:UserTask": "User task", "bpmn:ServiceTask": "Service task",
    "bpmn:ScriptTask": "Script task", "bpmn:ManualTask": "Manual task", "bpmn:SendTask": "Send task",
    "bpmn:ReceiveTask": "Receive task", "bpmn:BusinessRuleTask": "Business rule task",
    "bpmn:SubProcess": "Sub-process", "bpmn:CallActivity": "Call activity", "bpmn:StartEvent": "Start event",
    "bpmn:EndEvent": "End event", "bpmn:IntermediateCatchEvent": "Intermediate event",
    "bpmn:IntermediateThrowEvent": "Intermediate event", "bpmn:BoundaryEvent": "Boundary event",
    "bpmn:ExclusiveGateway": "Exclusive gateway", "bpmn:InclusiveGateway": "Inclusive gateway",
    "bpmn:ParallelGateway": "Parallel gateway", "bpmn:EventBasedGateway": "Event-based gateway",
    "bpmn:SequenceFlow": "Sequence flow", "bpmn:TextAnnotation": "Text annotation",
    "bpmn:Association": "Association", "bpmn:Group": "Group", "bpmn:DataObjectReference": "Data object",
    "bpmn:DataStoreReference": "Data store", "bpmn:MessageFlow": "Message flow"
  };
  var TIMER_KINDS = [["timeDate", "At a date and time"], ["timeDuration", "After a duration"]];

  var state = {
    revision: config.revision === undefined ? null : config.revision,
    publishable: !!config.publishable,
    depth: 0,          // how many steps of the undo stack lead to the diagram on screen
    savedDepth: 0,     // the depth of the diagram the server has (-1: no longer reachable by undo or redo)
    saving: null,      // the save under way (a promise), if any
    leaving: false,    // the page is being left on purpose (publishing): no unsaved-changes warning
    timerKinds: {},    // the timer type chosen for a timer whose value is still empty, by element id
    shown: null,       // the element the panel shows
    ready: false       // the diagram is open (imported) in the modeler
  };
  var modeler, modeling, moddle, registry, selection, canvas, commandStack, bpmnReplace;

  // ---- small DOM helpers (text always through textContent: names come from uploaded files) ----

  function node(tag, attrs, children) {
    var element = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (name) {
      var value = attrs[name];
      if (value === undefined || value === null || value === false) return;
      if (name === "text") element.textContent = value;
      else if (name === "className") element.className = value;
      else if (name === "value") element.value = value;
      else if (name === "checked" || name === "selected" || name === "readOnly" || name === "disabled") element[name] = true;
      else element.setAttribute(name, value === true ? "" : value);
    });
    (children || []).forEach(function (child) {
      if (child === null || child === undefined || child === false) return;
      element.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
    });
    return element;
  }

  function say(message, kind, extra) {
    statusNode.textContent = "";
    statusNode.className = "save-status" + (kind ? " " + kind : "");
    statusNode.appendChild(document.createTextNode(message));
    if (extra) {
      statusNode.appendChild(document.createTextNode(" "));
      statusNode.appendChild(extra);
    }
  }

  function pad(number) { return (number < 10 ? "0" : "") + number; }

  function clockTime(iso) {
    var when = iso ? new Date(iso) : new Date();
    if (isNaN(when.getTime())) when = new Date();
    return pad(when.getHours()) + ":" + pad(when.getMinutes());
  }

  // ---- reading the model ----

  function is(element, type) {
    var bo = element && (element.businessObject || element);
    return !!(bo && bo.$instanceOf && bo.$instanceOf(type));
  }

  function typeName(bo) {
    var name = TYPE_NAMES[bo.$type];
    if (!name) {
      name = bo.$type.replace(/^.*:/, "").replace(/([a-z])([A-Z])/g, "$1 $2").toLowerCase();
      name = name.charAt(0).toUpperCase() + name.slice(1);
    }
    if (timerOf(bo)) name = "Timer " + name.toLowerCase();
    return name;
  }

  function timerOf(bo) {
    return (bo.eventDefinitions || []).filter(function (d) { return d.$instanceOf("bpmn:TimerEventDefinition"); })[0];
  }

  function timerKindOf(definition) {
    if (definition.timeDuration) return "timeDuration";
    if (definition.timeCycle) return "timeCycle";
    return "timeDate";
  }

  function expressionText(expression) { return expression && expression.body ? expression.body : ""; }

  function spiffProperties(bo) {
    var extensions = bo.extensionElements;
    return extensions && (extensions.values || []).filter(function (v) { return v.$instanceOf(SPIFF + ":Properties"); })[0];
  }

  function spiffProperty(bo, name) {
    var holder = spiffProperties(bo);
    return holder && (holder.properties || []).filter(function (p) { return p.name === name; })[0];
  }

  function spiffExtension(bo, type) {
    var extensions = bo.extensionElements;
    return extensions && (extensions.values || []).filter(function (v) { return v.$instanceOf(SPIFF + ":" + type); })[0];
  }

  function roleOfLaneName(name) {
    return (config.lanes || []).filter(function (lane) { return lane.name === name; })[0];
  }

  function laneOf(element) {
    var bo = element.businessObject;
    var lanes = registry.filter(function (e) {
      return is(e, "bpmn:Lane") && (e.businessObject.flowNodeRef || []).indexOf(bo) !== -1;
    });
    var innermost = lanes.filter(function (lane) {
      var children = lane.businessObject.childLaneSet;
      return !(children && children.lanes && children.lanes.length);
    });
    return innermost[0] || lanes[0] || null;
  }

  function isConditionable(element) {
    return is(element, "bpmn:SequenceFlow") && element.source &&
      (is(element.source, "bpmn:ExclusiveGateway") || is(element.source, "bpmn:InclusiveGateway"));
  }

  function rootProcess() {
    var root = canvas.getRootElement();
    var bo = root.businessObject;
    if (is(bo, "bpmn:Collaboration")) {
      var withProcess = (bo.participants || []).filter(function (p) { return p.processRef; })[0];
      return withProcess ? withProcess.processRef : null;
    }
    return bo;
  }

  // ---- changing the model (each change is one command on bpmn-js's stack: undoable, exported) ----

  // Several updates as one step of the undo stack.
  function inOneStep(run) {
    commandStack.execute("civicflow.batch", { run: run });
  }

  function create(type, properties, parent) {
    var element = moddle.create(type, properties || {});
    if (parent) element.$parent = parent;
    return element;
  }

  function setName(element, value) {
    var name = value.trim() || undefined;
    if (element === canvas.getRootElement()) {
      var process = rootProcess();
      if (process && (process.name || undefined) !== name) modeling.updateModdleProperties(element, process, { name: name });
      return;
    }
    if ((element.businessObject.name || undefined) !== name) modeling.updateProperties(element, { name: name });
  }

  function setSpiffProperty(element, name, value) {
    var bo = element.businessObject;
    var extensions = bo.extensionElements;
    var holder = spiffProperties(bo);
    var property = spiffProperty(bo, name);
    if (!value) {
      if (!property) return;
      var rest = holder.properties.filter(function (p) { return p !== property; });
      if (rest.length) {
        modeling.updateModdleProperties(element, holder, { properties: rest });
      } else if (extensions.values.length > 1) {
        modeling.updateModdleProperties(element, extensions, {
          values: extensions.values.filter(function (v) { return v !== holder; })
        });
      } else {
        modeling.updateProperties(element, { extensionElements: undefined });
      }
      return;
    }
    if (property) {
      if (property.value !== value) modeling.updateModdleProperties(element, property, { value: value });
      return;
    }
    if (!extensions) {
      extensions = create("bpmn:ExtensionElements", { values: [] }, bo);
      holder = create(SPIFF + ":Properties", { properties: [] }, extensions);
      holder.properties.push(create(SPIFF + ":Property", { name: name, value: value }, holder));
      extensions.values.push(holder);
      modeling.updateProperties(element, { extensionElements: extensions });
    } else if (!holder) {
      holder = create(SPIFF + ":Properties", { properties: [] }, extensions);
      holder.properties.push(create(SPIFF + ":Property", { name: name, value: value }, holder));
      modeling.updateModdleProperties(element, extensions, { values: extensions.values.concat([holder]) });
    } else {
      modeling.updateModdleProperties(element, holder, {
        properties: holder.properties.concat([create(SPIFF + ":Property", { name: name, value: value }, holder)])
      });
    }
  }

  function setCondition(element, text) {
    var body = text.trim();
    if (body === expressionText(element.businessObject.conditionExpression)) return;
    modeling.updateProperties(element, {
      conditionExpression: body ? create("bpmn:FormalExpression", { body: body }, element.businessObject) : undefined
    });
  }

  function setDefaultFlow(element, isDefault) {
    var gateway = element.source;
    inOneStep(function () {
      if (isDefault) {
        // The default flow is the one taken when no condition holds: it has none of its own.
        if (element.businessObject.conditionExpression) modeling.updateProperties(element, { conditionExpression: undefined });
        modeling.updateProperties(gateway, { "default": element.businessObject });
      } else if (gateway.businessObject["default"] === element.businessObject) {
        modeling.updateProperties(gateway, { "default": undefined });
      }
    });
  }

  function setTimer(element, kind, text) {
    var definition = timerOf(element.businessObject);
    var body = text.trim();
    state.timerKinds[element.id] = kind;
    if (kind === timerKindOf(definition) && body === expressionText(definition[kind])) return;
    if (!body && !definition.timeDate && !definition.timeDuration && !definition.timeCycle) return;
    var properties = { timeDate: undefined, timeDuration: undefined, timeCycle: undefined };
    if (body) properties[kind] = create("bpmn:FormalExpression", { body: body }, definition);
    modeling.updateModdleProperties(element, definition, properties);
  }

  function makeUserTask(element) {
    var replaced = bpmnReplace.replaceElement(element, { type: "bpmn:UserTask" });
    selection.select(replaced);
    window.setTimeout(function () { panelHeading.focus(); }, 0);
  }

  // ---- the properties panel ----

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
    var input = node("input", { type: "text", id: id, value: value || "", readOnly: readOnly, autocomplete: "off",
                                spellcheck: readOnly ? "false" : null });
    if (onChange) input.addEventListener("change", function () { onChange(input.value); });
    return input;
  }

  function select(id, options, value, onChange) {
    var control = node("select", { id: id }, options.map(function (option) {
      return node("option", { value: option[0], text: option[1], selected: option[0] === value });
    }));
    control.value = value;
    control.addEventListener("change", function () { onChange(control.value); });
    return control;
  }

  function idField(bo) { return field("prop-id", "Id", textInput("prop-id", bo.id, null, true)); }

  function nameField(element, bo, label) {
    return field("prop-name", label || "Name", textInput("prop-name", bo.name, function (value) { setName(element, value); }));
  }

  function processFields(element) {
    var process = rootProcess();
    if (!process) return [node("p", { className: "hint", text: "This diagram has no process." })];
    return [
      node("p", { className: "hint",
                  text: "Nothing is selected: this is the process. Select an element in the diagram to edit it." }),
      field("prop-id", "Process id", textInput("prop-id", process.id, null, true),
            "The procedure's key; it cannot be changed here."),
      field("prop-name", "Name", textInput("prop-name", process.name, function (value) { setName(element, value); }))
    ];
  }

  function participantFields(element, bo) {
    return [
      idField(bo),
      nameField(element, bo),
      bo.processRef ? field("prop-process-id", "Process id", textInput("prop-process-id", bo.processRef.id, null, true),
                            "The procedure's key; it cannot be changed here.") : null
    ];
  }

  function laneFields(element, bo) {
    var role = roleOfLaneName(bo.name);
    var options = (config.lanes || []).map(function (lane) { return [lane.name, lane.name]; });
    if (!role) options.unshift(["", "Choose a role"]);
    return [
      idField(bo),
      !role ? warning(bo.name ? "This lane is named \u201c" + bo.name + "\u201d, which is not a role: choose the role whose tasks it holds."
                              : "This lane has no role yet: choose the role whose tasks it holds.") : null,
      field("prop-lane-role", "Role", select("prop-lane-role", options, role ? role.name : "", function (value) {
        if (value) modeling.updateProperties(element, { name: value });
      }), "The tasks drawn in this lane are done by this role.")
    ];
  }

  function knownOption(options, value, unknownLabel) {
    if (value && !options.some(function (option) { return option[0] === value; })) {
      options.push([value, unknownLabel.replace("%s", value)]);
    }
    return options;
  }

  function userTaskFields(element, bo) {
    var lane = laneOf(element);
    var role = lane && roleOfLaneName(lane.businessObject.name);
    var formKey = (spiffProperty(bo, "formKey") || {}).value || "";
    var deadline = (spiffProperty(bo, "deadline") || {}).value || "";
    var formOptions = [["", "Choose a form"]].concat((config.form_keys || []).map(function (form) {
      return [form.key, form.label];
    }));
    var deadlineOptions = [["", "No deadline"]].concat((config.deadlines || []).map(function (d) {
      return [d.kind, d.label];
    }));
    var formKnown = !formKey || (config.form_keys || []).some(function (f) { return f.key === formKey; });
    var deadlineKnown = !deadline || (config.deadlines || []).some(function (d) { return d.kind === deadline; });
    var laneText = !lane ? "In no lane"
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

  function conditionFields(element, bo) {
    var gateway = element.source.businessObject;
    var isDefault = gateway["default"] === bo;
    var condition = node("textarea", { id: "prop-condition", rows: "3", spellcheck: "false", className: "code",
                                       disabled: isDefault }, []);
    condition.value = expressionText(bo.conditionExpression);
    condition.addEventListener("change", function () { setCondition(element, condition.value); });
    var defaultBox = node("input", { type: "checkbox", id: "prop-default", checked: isDefault,
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

  function timerFields(element, bo) {
    var definition = timerOf(bo);
    var kind = timerKindOf(definition);
    var value = expressionText(definition[kind]);
    if (!value && state.timerKinds[element.id]) kind = state.timerKinds[element.id];
    var options = TIMER_KINDS.slice();
    if (kind === "timeCycle") options.push(["timeCycle", "Repeating (not supported)"]);
    var valueInput = textInput("prop-timer-value", value, null);
    valueInput.className = "code";
    valueInput.setAttribute("spellcheck", "false");
    var kindSelect = select("prop-timer-type", options, kind, function (chosen) {
      setTimer(element, chosen, valueInput.value);
    });
    valueInput.addEventListener("change", function () { setTimer(element, kindSelect.value, valueInput.value); });
    var attached = bo.attachedToRef;
    var example = (attached && (spiffProperty(attached, "deadline") || {}).value) ||
                  ((config.deadlines || [])[0] || {}).kind || "appeal_response";
    var helpers = (config.timer_helpers || []).map(function (h) { return h + "(\"\u2026\")"; }).join(", ");
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

  function readOnlyFacts(bo) {
    var facts = [];
    var operator = spiffExtension(bo, "ServiceTaskOperator");
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

  function fieldsFor(element) {
    var bo = element.businessObject;
    if (element === canvas.getRootElement()) return processFields(element);
    if (is(bo, "bpmn:Participant")) return participantFields(element, bo);
    if (is(bo, "bpmn:Lane")) return laneFields(element, bo);
    var fields = [];
    if (is(bo, "bpmn:UserTask")) fields = userTaskFields(element, bo);
    else if (isConditionable(element)) fields = conditionFields(element, bo);
    else fields = [idField(bo), nameField(element, bo)];
    if (bo.$type === "bpmn:Task") {
      var button = node("button", { type: "button", id: "prop-make-user-task", text: "Make this a user task" });
      button.addEventListener("click", function () { makeUserTask(element); });
      fields.push(node("div", { className: "field" }, [button,
        node("p", { className: "hint", text: "A person in the task's lane does a user task by filling in its form." })]));
    }
    if (timerOf(bo)) fields = fields.concat(timerFields(element, bo));
    fields.push(readOnlyFacts(bo));
    return fields;
  }

  // The heading is a live region: say it again only when it changes.
  function setHeading(text) {
    if (panelHeading.textContent !== text) panelHeading.textContent = text;
  }

  function renderPanel() {
    var selected = selection.get().map(function (e) { return e.labelTarget || e; });
    var element = selected.length === 1 ? selected[0] : selected.length ? null : canvas.getRootElement();
    // Keep the focus (and what is being typed) in the control that had it: the panel is rebuilt on every change.
    var active = document.activeElement;
    var keep = active && panel.contains(active) && active.id ? {
      id: active.id, value: active.value, sameElement: state.shown === element,
      start: active.selectionStart, end: active.selectionEnd
    } : null;
    state.shown = element;
    fillChooser();
    chooser.value = element && element !== canvas.getRootElement() ? element.id : "";
    panelBody.textContent = "";
    if (!element) {
      setHeading(selected.length + " elements selected");
      panelBody.appendChild(node("p", { className: "hint", text: "Select one element to edit its properties." }));
      return;
    }
    var bo = element === canvas.getRootElement() ? (rootProcess() || element.businessObject) : element.businessObject;
    setHeading(typeName(bo) + ": " + (bo.name || "(no name)"));
    fieldsFor(element).forEach(function (child) { if (child) panelBody.appendChild(child); });
    if (keep) {
      var again = document.getElementById(keep.id);
      if (again && panel.contains(again)) {
        if (keep.sameElement && (again.tagName === "TEXTAREA" || again.type === "text") && !again.readOnly) {
          again.value = keep.value;
        }
        again.focus();
        if (keep.sameElement && typeof keep.start === "number" && again.setSelectionRange) {
          try { again.setSelectionRange(keep.start, keep.end); } catch (ignored) { /* not a text control */ }
        }
      }
    }
  }

  // The element chooser: every element by type and name, so that the keyboard reaches each one.
  var chooserList = "";
  function fillChooser() {
    var root = canvas.getRootElement();
    var entries = registry.filter(function (e) {
      return e !== root && !e.labelTarget && e.businessObject && e.type !== "label" && !is(e, "bpmn:Collaboration");
    }).map(function (e) {
      var bo = e.businessObject;
      return [e.id, typeName(bo) + ": " + (bo.name || "(no name)") + " (" + e.id + ")"];
    }).sort(function (a, b) { return a[1].localeCompare(b[1]); });
    entries.unshift(["", "The process (nothing selected)"]);
    var list = JSON.stringify(entries);
    if (list === chooserList) return;
    chooserList = list;
    var value = chooser.value;
    chooser.textContent = "";
    entries.forEach(function (entry) { chooser.appendChild(node("option", { value: entry[0], text: entry[1] })); });
    chooser.value = value;
  }

  var renderPending = false;
  function scheduleRender() {
    // After the event that changed the model: focus has moved by then (Tab out of a field commits it).
    if (renderPending) return;
    renderPending = true;
    window.setTimeout(function () { renderPending = false; renderPanel(); }, 0);
  }

  panel.addEventListener("submit", function (event) { event.preventDefault(); });

  // ---- problems ----

  function findShape(id) {
    var shape = registry.get(id);
    if (shape) return shape;
    // A problem may name what is inside a shape (its timer, its condition) or the process of a pool.
    return registry.filter(function (e) {
      var bo = e.businessObject;
      if (!bo || e.labelTarget) return false;
      if (bo.processRef && bo.processRef.id === id) return true;
      if (bo.conditionExpression && bo.conditionExpression.id === id) return true;
      if (bo.loopCharacteristics && bo.loopCharacteristics.id === id) return true;
      return (bo.eventDefinitions || []).some(function (d) { return d.id === id; });
    })[0] || null;
  }

  // Scroll the diagram to an element only if it is not in view already (a jump is disorienting).
  function reveal(element) {
    var box = element.waypoints ? element.waypoints.reduce(function (b, p) {
      return { x1: Math.min(b.x1, p.x), y1: Math.min(b.y1, p.y), x2: Math.max(b.x2, p.x), y2: Math.max(b.y2, p.y) };
    }, { x1: Infinity, y1: Infinity, x2: -Infinity, y2: -Infinity })
      : { x1: element.x, y1: element.y, x2: element.x + element.width, y2: element.y + element.height };
    var view = canvas.viewbox();
    if (box.x1 >= view.x && box.y1 >= view.y && box.x2 <= view.x + view.width && box.y2 <= view.y + view.height) return;
    canvas.scrollToElement(element, 40);
  }

  function showElement(id) {
    var shape = findShape(id);
    if (!shape) {
      say("The element " + id + " is not in the diagram on screen (it may have been removed since the last save).", "warn");
      return;
    }
    if (shape === canvas.getRootElement()) {
      selection.select(null);
    } else {
      reveal(shape);
      selection.select(shape);
    }
    renderPanel();
    panelHeading.focus();
  }

  function renderProblems(problems) {
    problemList.textContent = "";
    if (!problems || !problems.length) {
      problemList.appendChild(node("p", { className: "ok", text: "No problems: this draft can be published." }));
      return;
    }
    var list = node("ul", { className: "problems" });
    problems.forEach(function (problem, index) {
      var where = [];
      if (problem.element) where.push(problem.element);
      if (problem.line) where.push("line " + problem.line);
      var title = problem.name || problem.element || "";
      var messageId = "problem-" + index + "-message";
      var message = node("span", { className: "message", id: messageId, text: problem.message });
      var item;
      if (problem.element && modeler) {
        var button = node("button", { type: "button", className: "link-like", "data-element": problem.element,
                                      "aria-describedby": messageId }, [
          node("strong", { text: title }), where.length ? " (" + where.join(", ") + ")" : ""
        ]);
        button.addEventListener("click", function () { showElement(problem.element); });
        item = node("li", {}, [button, ": ", message]);
      } else {
        item = node("li", {}, [title ? node("strong", { text: title }) : null,
          where.length ? (title ? " (" : "") + where.join(", ") + (title ? ")" : "") : null,
          title || where.length ? ": " : null, message]);
      }
      list.appendChild(item);
    });
    problemList.appendChild(list);
  }

  function showPublishable() {
    publishButton.classList.toggle("looks-disabled", !state.publishable);
    if (publishRevision) publishRevision.value = state.revision === null ? "" : String(state.revision);
    publishHint.textContent = state.publishable
      ? "New requests will follow the published diagram; requests already running keep the version they started " +
        "with. Changes not saved yet are saved first."
      : !state.revision ? "There is no draft to publish yet: change the diagram and save it first."
      : "This draft cannot be published until the problems listed here are fixed and saved.";
  }

  // ---- saving ----

  function isDirty() { return state.depth !== state.savedDepth; }

  // Undoing back to what was saved leaves nothing unsaved; a new change after undoing past it loses the saved state.
  function countStep(trigger) {
    if (trigger === "execute") {
      if (state.depth < state.savedDepth) state.savedDepth = -1;
      state.depth += 1;
    } else if (trigger === "undo") {
      state.depth -= 1;
    } else if (trigger === "redo") {
      state.depth += 1;
    }
  }

  function downloadLink(xml) {
    var url = URL.createObjectURL(new Blob([xml], { type: "application/xml" }));
    return node("a", { href: url, download: config.key + ".bpmn", text: "Download the diagram on screen" });
  }

  function save() {
    if (state.saving) return state.saving;
    var depthAtExport = state.depth;
    var xml = null;
    saveButton.setAttribute("aria-busy", "true");
    say("Saving\u2026");
    state.saving = modeler.saveXML({ format: true }).then(function (result) {
      xml = result.xml;
      var headers = { "Content-Type": "application/xml", "X-CSRFToken": config.csrf_token, "Accept": "application/json" };
      if (state.revision !== null) headers["If-Match"] = "\"" + state.revision + "\"";
      return fetch(config.save_url, { method: "PUT", headers: headers, body: xml, credentials: "same-origin" });
    }).then(function (response) {
      return response.json().then(function (data) { return { response: response, data: data }; },
                                  function () { return { response: response, data: null }; });
    }).then(function (answer) {
      var response = answer.response, data = answer.data || {};
      if (response.ok) {
        state.revision = data.revision === undefined ? state.revision : data.revision;
        state.publishable = !!data.publishable;
        state.savedDepth = depthAtExport;
        renderProblems(data.problems || []);
        showPublishable();
        var count = (data.problems || []).length;
        if (draftState && state.revision) {
          draftState.textContent = "draft revision " + state.revision + ", saved at " + clockTime(data.saved_at);
        }
        say("Draft saved at " + clockTime(data.saved_at) + "." +
            (count ? " " + count + (count === 1 ? " problem blocks" : " problems block") + " publishing." : ""), "ok");
        return true;
      }
      var error = data.error || {};
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
  function saved() {
    return Promise.resolve(state.saving).then(function (ok) {
      if (ok === false) return false;
      return isDirty() ? save() : true;
    });
  }

  saveButton.addEventListener("click", function () {
    if (state.ready) save();
    else say("The diagram is not open in the editor: there is nothing to save.", "error");
  });
  document.addEventListener("keydown", function (event) {
    if ((event.ctrlKey || event.metaKey) && !event.altKey && (event.key === "s" || event.key === "S")) {
      event.preventDefault();
      if (state.ready) {
        if (document.activeElement && panel.contains(document.activeElement)) document.activeElement.blur();
        save();
      }
    }
  });

  if (publishForm) {
    publishForm.addEventListener("submit", function (event) {
      // Without the diagram open there is nothing on screen to save: the server judges the stored draft.
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
  // Uploading or discarding replaces what is on screen on purpose: no "unsaved changes" question then.
  ["upload-form", "discard-form"].forEach(function (id) {
    var form = document.getElementById(id);
    if (form) form.addEventListener("submit", function () { state.leaving = true; });
  });

  window.addEventListener("beforeunload", function (event) {
    if (state.ready && isDirty() && !state.leaving) {
      event.preventDefault();
      event.returnValue = "";
    }
  });

  // The whole diagram in view, clear of the palette on the left, never enlarged beyond its size.
  function fitDiagram() {
    var box = canvas.viewbox();
    var inner = box.inner;
    var size = { width: canvasNode.clientWidth, height: canvasNode.clientHeight };
    if (!inner.width || !inner.height || !size.width) return;
    var left = 110, margin = 24;
    var scale = Math.min((size.width - left - margin) / inner.width, (size.height - 2 * margin) / inner.height, 1);
    canvas.viewbox({ x: inner.x - left / scale, y: inner.y - margin / scale,
                     width: size.width / scale, height: size.height / scale });
  }

  // ---- start ----

  function fetchOk(url, as) {
    return fetch(url, { credentials: "same-origin" }).then(function (response) {
      if (!response.ok) throw new Error(url + " answered " + response.status);
      return as === "json" ? response.json() : response.text();
    });
  }

  function showImportWarnings(warnings) {
    if (!warnings || !warnings.length) return;
    warningsNode.hidden = false;
    warningsNode.textContent = "";
    warningsNode.appendChild(node("p", {
      text: "Parts of this diagram could not be read by the editor; saving it would drop them:"
    }));
    warningsNode.appendChild(node("ul", {}, warnings.map(function (w) { return node("li", { text: w.message }); })));
  }

  if (typeof window.BpmnJS !== "function") {
    say("The diagram editor (bpmn-js) could not be loaded.", "error");
    return;
  }

  Promise.all([fetchOk(script.dataset.moddle, "json"), fetchOk(config.xml_url, "text")]).then(function (loaded) {
    modeler = new window.BpmnJS({ container: canvasNode, moddleExtensions: { spiffworkflow: loaded[0] } });
    window.civicflowEditor = modeler;
    modeling = modeler.get("modeling");
    moddle = modeler.get("moddle");
    registry = modeler.get("elementRegistry");
    selection = modeler.get("selection");
    canvas = modeler.get("canvas");
    commandStack = modeler.get("commandStack");
    bpmnReplace = modeler.get("bpmnReplace");
    commandStack.register("civicflow.batch", {
      preExecute: function (context) { context.run(); },
      execute: function () { return []; },
      revert: function () { return []; }
    });
    return modeler.importXML(loaded[1]);
  }).then(function (result) {
    showImportWarnings(result.warnings);
    fitDiagram();
    var eventBus = modeler.get("eventBus");
    eventBus.on("selection.changed", scheduleRender);
    eventBus.on("commandStack.changed", function (event) {
      countStep(event.trigger);
      undoButton.disabled = !commandStack.canUndo();
      redoButton.disabled = !commandStack.canRedo();
      scheduleRender();
    });
    undoButton.addEventListener("click", function () { commandStack.undo(); });
    chooser.addEventListener("change", function () {
      var shape = chooser.value && registry.get(chooser.value);
      if (shape) {
        reveal(shape);
        selection.select(shape);
      } else {
        selection.select(null);
      }
    });
    var middle = function () { return { x: canvasNode.clientWidth / 2, y: canvasNode.clientHeight / 2 }; };
    document.getElementById("zoom-in").addEventListener("click", function () { canvas.zoom(canvas.zoom() * 1.25, middle()); });
    document.getElementById("zoom-out").addEventListener("click", function () { canvas.zoom(canvas.zoom() / 1.25, middle()); });
    document.getElementById("zoom-fit").addEventListener("click", fitDiagram);
    redoButton.addEventListener("click", function () { commandStack.redo(); });
    renderPanel();
    renderProblems(config.problems || []);
    showPublishable();
    state.ready = true;
    canvasNode.dataset.ready = "true";
  }).catch(function (failure) {
    canvasNode.dataset.ready = "false";
    panelBody.textContent = "";
    say("The diagram could not be opened: " + (failure && failure.message ? failure.message : failure) +
        ". Upload a corrected .bpmn file below, or discard the draft.", "error");
  });
})();
