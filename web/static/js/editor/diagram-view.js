// What part of the diagram is in view: the whole of it, zooming, scrolling to an element.
import { canvas } from "./modeler.js";

const canvasNode = document.getElementById("canvas");

// The whole diagram in view, clear of the palette on the left, never enlarged beyond its size.
export function fitDiagram() {
  const box = canvas.viewbox();
  const inner = box.inner;
  const size = { width: canvasNode.clientWidth, height: canvasNode.clientHeight };
  if (!inner.width || !inner.height || !size.width) return;
  const left = 110, margin = 24;
  const scale = Math.min((size.width - left - margin) / inner.width, (size.height - 2 * margin) / inner.height, 1);
  canvas.viewbox({ x: inner.x - left / scale, y: inner.y - margin / scale,
                   width: size.width / scale, height: size.height / scale });
}

function middle() { return { x: canvasNode.clientWidth / 2, y: canvasNode.clientHeight / 2 }; }

export function zoomIn() { canvas.zoom(canvas.zoom() * 1.25, middle()); }

export function zoomOut() { canvas.zoom(canvas.zoom() / 1.25, middle()); }

function boxOf(element) {
  return element.waypoints ? element.waypoints.reduce(function (b, p) {
    return { x1: Math.min(b.x1, p.x), y1: Math.min(b.y1, p.y), x2: Math.max(b.x2, p.x), y2: Math.max(b.y2, p.y) };
  }, { x1: Infinity, y1: Infinity, x2: -Infinity, y2: -Infinity })
    : { x1: element.x, y1: element.y, x2: element.x + element.width, y2: element.y + element.height };
}

// The element in the middle of the view at its actual size (the editor opened at it by a link).
export function centerOn(element) {
  const box = boxOf(element);
  const size = { width: canvasNode.clientWidth, height: canvasNode.clientHeight };
  if (!size.width || !size.height) return;
  canvas.viewbox({ x: (box.x1 + box.x2 - size.width) / 2, y: (box.y1 + box.y2 - size.height) / 2,
                   width: size.width, height: size.height });
}

// Scroll the diagram to an element only if it is not in view already (a jump is disorienting).
export function reveal(element) {
  const box = boxOf(element);
  const view = canvas.viewbox();
  if (box.x1 >= view.x && box.y1 >= view.y && box.x2 <= view.x + view.width && box.y2 <= view.y + view.height) return;
  canvas.scrollToElement(element, 40);
}
