// Building the editor's DOM. Text always goes through textContent: names come from uploaded files.

// An element with attributes (text, className, value and the boolean properties are set as properties; null,
// undefined and false are left out) and children (strings become text nodes; null, undefined and false are skipped).
export function node(tag, attrs, children) {
  const element = document.createElement(tag);
  Object.keys(attrs || {}).forEach(function (name) {
    const value = attrs[name];
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
