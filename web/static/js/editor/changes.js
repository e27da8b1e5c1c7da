// Changing the diagram from the properties panel. Each change is one command on bpmn-js's stack (modeling), so that
// it can be undone and is in the exported XML.
import { bpmnReplace, canvas, inOneStep, moddle, modeling, selection } from "./modeler.js";
import { SPIFF, expressionText, rootProcess, spiffProperties, spiffProperty, timerKindOf, timerOf } from "./model.js";
import { state } from "./state.js";

function create(type, properties, parent) {
  const element = moddle.create(type, properties || {});
  if (parent) element.$parent = parent;
  return element;
}

// The element's name (the process's, when the element is the diagram's root); empty removes it.
export function setName(element, value) {
  const name = value.trim() || undefined;
  if (element === canvas.getRootElement()) {
    const process = rootProcess();
    if (process && (process.name || undefined) !== name) modeling.updateModdleProperties(element, process, { name: name });
    return;
  }
  if ((element.businessObject.name || undefined) !== name) modeling.updateProperties(element, { name: name });
}

// A lane stands for the role it is named after.
export function setLaneRole(element, roleName) {
  if (roleName) modeling.updateProperties(element, { name: roleName });
}

// A spiffworkflow:property of the element (formKey, deadline); empty removes it, and the holders left empty.
export function setSpiffProperty(element, name, value) {
  const bo = element.businessObject;
  let extensions = bo.extensionElements;
  let holder = spiffProperties(bo);
  const property = spiffProperty(bo, name);
  if (!value) {
    if (!property) return;
    const rest = holder.properties.filter(function (p) { return p !== property; });
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

// A sequence flow's condition; empty removes it.
export function setCondition(element, text) {
  const body = text.trim();
  if (body === expressionText(element.businessObject.conditionExpression)) return;
  modeling.updateProperties(element, {
    conditionExpression: body ? create("bpmn:FormalExpression", { body: body }, element.businessObject) : undefined
  });
}

export function setDefaultFlow(element, isDefault) {
  const gateway = element.source;
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

// A timer's type (timeDate, timeDuration) and expression. The type chosen for a timer with no value yet is kept
// (state.timerKinds) for the panel to show, though there is nothing to write down.
export function setTimer(element, kind, text) {
  const definition = timerOf(element.businessObject);
  const body = text.trim();
  state.timerKinds[element.id] = kind;
  if (kind === timerKindOf(definition) && body === expressionText(definition[kind])) return;
  if (!body && !definition.timeDate && !definition.timeDuration && !definition.timeCycle) return;
  const properties = { timeDate: undefined, timeDuration: undefined, timeCycle: undefined };
  if (body) properties[kind] = create("bpmn:FormalExpression", { body: body }, definition);
  modeling.updateModdleProperties(element, definition, properties);
}

// A plain task replaced by a user task, which is then selected.
export function makeUserTask(element) {
  const replaced = bpmnReplace.replaceElement(element, { type: "bpmn:UserTask" });
  selection.select(replaced);
}
