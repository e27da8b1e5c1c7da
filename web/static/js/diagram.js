// Draws the request's diagram with bpmn-js (the navigated viewer: read-only, with pan and zoom), marks the steps done,
// the flows taken between them and the step waiting now, and opens at actual size on where the request is.
(function () {
  "use strict";
  var container = document.getElementById("diagram");
  var status = document.getElementById("diagram-status");
  if (!container || typeof window.BpmnJS !== "function") {
    if (status) status.textContent = "The diagram viewer could not be loaded.";
    return;
  }
  var viewer = new window.BpmnJS({ container: container });

  // A flow is taken when the step it leaves is done and the step it reaches is done or waiting now.
  function takenFlows(registry, done, current) {
    var passed = {};
    done.forEach(function (id) { passed[id] = true; });
    var reached = Object.assign({}, passed);
    current.forEach(function (id) { reached[id] = true; });
    return registry
      .filter(function (element) { return element.type === "bpmn:SequenceFlow"; })
      .filter(function (flow) { return flow.source && flow.target && passed[flow.source.id] && reached[flow.target.id]; })
      .map(function (flow) { return flow.id; });
  }

  function wireButtons(canvas, home) {
    var zoomBy = function (factor) { canvas.zoom(canvas.zoom() * factor); };
    var actions = {
      fit: function () { canvas.zoom("fit-viewport", "auto"); },
      actual: function () { canvas.zoom(1); if (home) canvas.scrollToElement(home); },
      "zoom-in": function () { zoomBy(1.25); },
      "zoom-out": function () { zoomBy(0.8); }
    };
    var bar = document.getElementById("diagram-tools");
    if (!bar) return;
    Array.prototype.forEach.call(bar.querySelectorAll("button[data-action]"), function (button) {
      button.addEventListener("click", actions[button.dataset.action]);
    });
    bar.hidden = false;
  }

  fetch(container.dataset.src, { credentials: "same-origin" })
    .then(function (response) {
      if (!response.ok) throw new Error("the diagram could not be fetched (" + response.status + ")");
      return response.text();
    })
    .then(function (xml) { return viewer.importXML(xml); })
    .then(function () {
      var canvas = viewer.get("canvas");
      var registry = viewer.get("elementRegistry");
      var done = JSON.parse(container.dataset.done);
      var current = JSON.parse(container.dataset.current);
      var mark = function (ids, marker) {
        ids.forEach(function (id) { if (registry.get(id)) canvas.addMarker(id, marker); });
      };
      mark(done, "cf-done");
      mark(takenFlows(registry, done, current), "cf-taken");
      mark(current, "cf-current");
      // Actual size, scrolled to the step waiting now (or the last step done): readable, not shrunk to fit.
      var homeId = current.filter(function (id) { return registry.get(id); })[0] ||
        done.filter(function (id) { return registry.get(id); }).slice(-1)[0];
      var home = homeId ? registry.get(homeId) : null;
      canvas.zoom(1);
      if (home) canvas.scrollToElement(home, { top: 80, bottom: 80, left: 160, right: 160 });
      wireButtons(canvas, home);
      container.dataset.rendered = "true";
    })
    .catch(function (error) {
      status.textContent = "The diagram could not be drawn: " + error.message;
    });
})();
