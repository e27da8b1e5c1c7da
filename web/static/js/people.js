// A filter box above each list of people (select[data-person-filter]): typing part of a name hides the others.
// Without scripts the list is a plain select; the value sent is always the chosen person's username.
(function () {
  "use strict";
  var lists = document.querySelectorAll("select[data-person-filter]");
  Array.prototype.forEach.call(lists, function (list) {
    var box = document.createElement("input");
    box.type = "search";
    box.id = list.id + "-filter";
    box.className = "people-filter";
    box.setAttribute("autocomplete", "off");
    box.setAttribute("aria-controls", list.id);
    var label = document.createElement("label");
    label.htmlFor = box.id;
    label.className = "people-filter-label";
    label.textContent = "Find a person by name";
    var count = document.createElement("span");
    count.className = "hint";
    count.setAttribute("aria-live", "polite");
    list.parentNode.insertBefore(label, list);
    list.parentNode.insertBefore(box, list);
    list.parentNode.insertBefore(count, list);
    box.addEventListener("input", function () {
      var words = box.value.trim().toLowerCase();
      var shown = 0;
      Array.prototype.forEach.call(list.options, function (option) {
        // The blank "Choose a person" and anyone already chosen stay in view.
        var keep = !option.value || option.selected || option.text.toLowerCase().indexOf(words) !== -1;
        option.hidden = !keep;
        if (keep && option.value) shown += 1;
      });
      count.textContent = words ? shown + (shown === 1 ? " person matches" : " people match") : "";
    });
  });
})();
