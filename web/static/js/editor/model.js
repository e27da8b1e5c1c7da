// Reading the diagram's model: element types as people name them, timers, conditions, spiffworkflow properties,
// lanes and the roles they stand for, the process.
import { config } from "./config.js";
import { canvas, registry } from "./modeler.js";

export const SPIFF = "spiffworkflow";

const TYPE_NAMES = {
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

// Whether a shape or a business object is of a type (or a subtype of it).
export function is(element, type) {
  const bo = element && (element.businessObject || element);
  return !!(bo && bo.$instanceOf && bo.$instanceOf(type));
}

export function typeName(bo) {
  let name = TYPE_NAMES[bo.$type];
  if (!name) {
    name = bo.$type.replace(/^.*:/, "").replace(/([a-z])([A-Z])/g, "$1 $2").toLowerCase();
    name = name.charAt(0).toUpperCase() + name.slice(1);
  }
  if (timerOf(bo)) name = "Timer " + name.toLowerCase();
  return name;
}

export function timerOf(bo) {
  return (bo.eventDefinitions || []).filter(function (d) { return d.$instanceOf("bpmn:TimerEventDefinition"); })[0];
}

export function timerKindOf(definition) {
  if (definition.timeDuration) return "timeDuration";
  if (definition.timeCycle) return "timeCycle";
  return "timeDate";
}

export function expressionText(expression) { return expression && expression.body ? expression.body : ""; }

export function spiffProperties(bo) {
  const extensions = bo.extensionElements;
  return extensions && (extensions.values || []).filter(function (v) { return v.$instanceOf(SPIFF + ":Properties"); })[0];
}

export function spiffProperty(bo, name) {
  const holder = spiffProperties(bo);
  return holder && (holder.properties || []).filter(function (p) { return p.name === name; })[0];
}

export function spiffExtension(bo, type) {
  const extensions = bo.extensionElements;
  return extensions && (extensions.values || []).filter(function (v) { return v.$instanceOf(SPIFF + ":" + type); })[0];
}

// The procedure's role whose lane has this name, if any.
export function roleOfLaneName(name) {
  return (config.lanes || []).filter(function (lane) { return lane.name === name; })[0];
}

// The innermost lane an element is drawn in, or null.
export function laneOf(element) {
  const bo = element.businessObject;
  const lanes = registry.filter(function (e) {
    return is(e, "bpmn:Lane") && (e.businessObject.flowNodeRef || []).indexOf(bo) !== -1;
  });
  const innermost = lanes.filter(function (lane) {
    const children = lane.businessObject.childLaneSet;
    return !(children && children.lanes && children.lanes.length);
  });
  return innermost[0] || lanes[0] || null;
}

// A sequence flow out of an exclusive or inclusive gateway: it can have a condition, or be the default.
export function isConditionable(element) {
  return is(element, "bpmn:SequenceFlow") && element.source &&
    (is(element.source, "bpmn:ExclusiveGateway") || is(element.source, "bpmn:InclusiveGateway"));
}

// The process of the diagram (of its first pool that has one, in a collaboration), or null.
export function rootProcess() {
  const root = canvas.getRootElement();
  const bo = root.businessObject;
  if (is(bo, "bpmn:Collaboration")) {
    const withProcess = (bo.participants || []).filter(function (p) { return p.processRef; })[0];
    return withProcess ? withProcess.processRef : null;
  }
  return bo;
}
