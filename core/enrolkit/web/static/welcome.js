// Live preview of the welcome message: each pause in typing posts the template to the server,
// which validates and renders it for the chosen user. Without script, the Preview button does
// the same with a page load.
(function () {
  "use strict";
  var form = document.getElementById("welcome-form");
  if (!form) return;
  var url = form.getAttribute("data-preview");
  var problems = document.getElementById("w-problems");
  var rendered = document.getElementById("w-rendered");
  var timer = null;
  var sequence = 0;

  function show(data) {
    problems.replaceChildren();
    (data.problems || []).forEach(function (text) {
      var item = document.createElement("li");
      item.className = "field-error";
      item.textContent = text;
      problems.appendChild(item);
    });
    if (data.problems && data.problems.length) {
      rendered.hidden = true;
      return;
    }
    rendered.hidden = false;
    document.getElementById("w-subject").textContent = data.subject || "";
    var frame = document.getElementById("w-html");
    frame.srcdoc = (frame.getAttribute("data-frame-style") || "") + (data.html || "");
    document.getElementById("w-text").textContent = data.text || "";
  }

  function refresh() {
    var mine = ++sequence;
    var body = new FormData();
    ["csrf_token", "source", "user", "variables"].forEach(function (name) {
      var field = form.elements[name];
      if (field) body.append(name, field.value);
    });
    fetch(url, { method: "POST", body: body, credentials: "same-origin" })
      // Problems, a refused user and "too many previews" (429) all come back as JSON.
      .then(function (response) { return response.status < 500 ? response.json() : null; })
      .then(function (data) { if (data && mine === sequence) show(data); })
      .catch(function () {});
  }

  function later() {
    clearTimeout(timer);
    timer = setTimeout(refresh, 350);
  }

  ["source", "user", "variables"].forEach(function (name) {
    var field = form.elements[name];
    if (field) field.addEventListener("input", later);
  });
})();
