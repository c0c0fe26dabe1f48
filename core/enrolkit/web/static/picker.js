/* Searchable pickers: an <input data-pick="users|cohorts|courses|categories|roles"> gets
   suggestions from /web/pick/<kind>?q= as the person types, offered through a native <datalist>
   (keyboard and screen readers handle it; nothing custom to learn). Without this script the
   input still takes the identifier typed by hand. No framework, no outside file. */
(function () {
  "use strict";
  var meta = document.querySelector('meta[name="enrolkit-pick"]');
  if (!meta || !window.fetch) { return; }
  var base = meta.getAttribute("content");
  var counter = 0;

  function attach(input) {
    var kind = input.getAttribute("data-pick");
    var list = document.createElement("datalist");
    list.id = "pick-" + kind + "-" + (++counter);
    input.setAttribute("list", list.id);
    input.setAttribute("autocomplete", "off");
    input.parentNode.insertBefore(list, input.nextSibling);
    var timer = null;
    var asked = null;

    function search() {
      var query = input.value.trim();
      if (query === asked) { return; }
      asked = query;
      fetch(base + kind + "?q=" + encodeURIComponent(query), {
        credentials: "same-origin", headers: { "Accept": "application/json" }
      }).then(function (response) {
        return response.ok ? response.json() : { results: [] };
      }).then(function (answer) {
        if (asked !== query) { return; }
        list.textContent = "";
        answer.results.forEach(function (item) {
          var option = document.createElement("option");
          option.value = item.value;
          option.label = item.label;
          option.textContent = item.label;
          list.appendChild(option);
        });
      }).catch(function () { /* the plain input still works */ });
    }

    input.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(search, 200);
    });
    input.addEventListener("focus", search);

    // data-pick-into="ID": a chosen value joins the list in that textarea ("Enrol users").
    var into = document.getElementById(input.getAttribute("data-pick-into") || "");
    if (into) {
      input.addEventListener("change", function () {
        var value = input.value.trim();
        if (!value) { return; }
        var names = into.value.split(/[\s,;]+/).filter(Boolean);
        if (names.indexOf(value) < 0) { names.push(value); }
        into.value = names.join("\n");
        input.value = "";
      });
    }
  }

  document.querySelectorAll("input[data-pick]").forEach(attach);
})();
