// Draws the request's diagram with bpmn-js (the navigated viewer: read-only, with pan and zoom) and marks the steps done and the step waiting now.
(function () {
  "use strict";
  var container = document.getElementById("diagram");
  var status = document.getElementById("diagram-status");
  if (!container || typeof window.BpmnJS !== "function") {
    if (status) status.textContent = "The diagram viewer could not be loaded.";
    return;
  }
  var viewer = new window.BpmnJS({ container: container });
  fetch(container.dataset.src, { credentials: "same-origin" })
    .then(function (response) {
      if (!response.ok) throw new Error("the diagram could not be fetched (" + response.status + ")");
      return response.text();
    })
    .then(function (xml) { return viewer.importXML(xml); })
    .then(function () {
      var canvas = viewer.get("canvas");
      var registry = viewer.get("elementRegistry");
      var mark = function (ids, marker) {
        ids.forEach(function (id) { if (registry.get(id)) canvas.addMarker(id, marker); });
      };
      mark(JSON.parse(container.dataset.done), "cf-done");
      mark(JSON.parse(container.dataset.current), "cf-current");
      canvas.zoom("fit-viewport", "auto");
      container.dataset.rendered = "true";
    })
    .catch(function (error) {
      status.textContent = "The diagram could not be drawn: " + error.message;
    });
})();
