import { insertStepModule } from "./insert-step.js";

// bpmn-js's modeler (window.BpmnJS, from /vendor/bpmn-js/bpmn-modeler.production.min.js) and the services of it that
// the editor uses. They are set once by openModeler(), before any other module uses them (live bindings).

export let modeler, modeling, moddle, registry, selection, canvas, commandStack, bpmnReplace, eventBus;

export function modelerLoaded() {
  return typeof window.BpmnJS === "function";
}

// The modeler in the container, with the spiffworkflow moddle extension (its JSON descriptor). The browser tests
// reach it as window.civicflowEditor.
export function openModeler(container, spiffworkflow) {
  modeler = new window.BpmnJS({
    container: container,
    moddleExtensions: { spiffworkflow: spiffworkflow },
    additionalModules: [insertStepModule]
  });
  window.civicflowEditor = modeler;
  modeling = modeler.get("modeling");
  moddle = modeler.get("moddle");
  registry = modeler.get("elementRegistry");
  selection = modeler.get("selection");
  canvas = modeler.get("canvas");
  commandStack = modeler.get("commandStack");
  bpmnReplace = modeler.get("bpmnReplace");
  eventBus = modeler.get("eventBus");
  commandStack.register("civicflow.batch", {
    preExecute: function (context) { context.run(); },
    execute: function () { return []; },
    revert: function () { return []; }
  });
  return modeler;
}

// Several updates as one step of the undo stack.
export function inOneStep(run) {
  commandStack.execute("civicflow.batch", { run: run });
}
