// The rule builder: edits the rule's JSON (Moodle availability format) in the textarea below it,
// as nested groups (all of / any of / not all of / none of) of conditions whose types come from
// the site's registry. The textarea stays the source of truth, so the page works without script
// and a hand edit of the JSON redraws the builder.
(function () {
  "use strict";
  var dataNode = document.getElementById("rule-data");
  var root = document.getElementById("rule-builder");
  // On the rule page the textarea is #rule-json; on a method's add or edit form it is the
  // settings' "rule" field, and the builder moves next to it (data-attach="rule").
  var textarea = document.getElementById("rule-json") ||
    document.querySelector("form[data-rule-form] textarea[name=rule]");
  if (!dataNode || !root || !textarea) return;
  if (root.getAttribute("data-attach")) {
    var field = textarea.closest(".field") || textarea.parentNode;
    field.parentNode.insertBefore(root, field);
    var help = document.getElementById("rule-help");
    if (help) { field.parentNode.insertBefore(help, field); }
    var tester = document.getElementById("rule-tester");
    if (tester) { field.parentNode.insertBefore(tester, field.nextSibling); }
  }
  setUpTester(textarea);
  var data = JSON.parse(dataNode.textContent);
  var L = data.labels;
  var OPS = ["&", "|", "!&", "!|"];
  var NO_VALUE = ["isempty", "isnotempty"];
  var types = {};
  data.types.forEach(function (t) { types[t.type] = t; });
  var rule = null;
  var counter = 0;

  function uid(prefix) { counter += 1; return prefix + "-" + counter; }

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (key) {
      if (key === "text") node.textContent = attrs[key];
      else if (key === "value") node.value = attrs[key];
      else node.setAttribute(key, attrs[key]);
    });
    (children || []).forEach(function (child) { if (child) node.appendChild(child); });
    return node;
  }

  function labelled(text, control) {
    var id = uid("rb");
    control.id = id;
    return [el("label", { for: id, text: text, class: "sr-only" }), control];
  }

  function select(options, current) {
    var node = el("select");
    options.forEach(function (pair) {
      var option = el("option", { value: pair[0], text: pair[1] });
      if (String(pair[0]) === String(current)) option.selected = true;
      node.appendChild(option);
    });
    return node;
  }

  function datalists() {
    Object.keys(data.values).forEach(function (name) {
      var list = el("datalist", { id: "rb-values-" + name });
      data.values[name].forEach(function (value) { list.appendChild(el("option", { value: value })); });
      document.body.appendChild(list);
    });
  }

  function save() {
    var empty = !rule.c.length && rule.op === "&";
    textarea.value = empty ? "" : JSON.stringify(clean(rule), null, 2);
  }

  function clean(group) {
    return { op: group.op, c: group.c.map(function (child) { return child.type ? child : clean(child); }) };
  }

  function dayOf(seconds) {
    var date = new Date((seconds || 0) * 1000);
    return date.toISOString().slice(0, 10);
  }

  function secondsOf(day) {
    var parts = day.split("-").map(Number);
    return Math.floor(Date.UTC(parts[0], parts[1] - 1, parts[2]) / 1000);
  }

  function fresh(type) {
    var spec = types[type];
    if (spec.editor === "profile") return { type: type, sf: "department", op: "isequalto", v: "" };
    if (spec.editor === "date") return { type: type, d: ">=", t: secondsOf(new Date().toISOString().slice(0, 10)) };
    if (spec.editor === "named") { var node = { type: type }; node[spec.key] = ""; return node; }
    return { type: type };
  }

  function profileEditor(node) {
    var fields = data.standard_fields.map(function (f) { return ["sf:" + f, f]; })
      .concat(data.custom_fields.map(function (f) { return ["cf:" + f, "profile_field_" + f]; }));
    var current = node.cf !== undefined ? "cf:" + node.cf : "sf:" + (node.sf || "");
    var field = select(fields, current);
    var op = select(data.profile_ops.map(function (o) { return [o, o]; }), node.op);
    var value = el("input", { value: node.v || "", size: "16" });
    value.hidden = NO_VALUE.indexOf(node.op) >= 0;
    field.addEventListener("change", function () {
      var parts = field.value.split(":");
      delete node.sf; delete node.cf;
      node[parts[0]] = parts.slice(1).join(":");
      save();
    });
    op.addEventListener("change", function () {
      node.op = op.value;
      if (NO_VALUE.indexOf(node.op) >= 0) { delete node.v; value.hidden = true; }
      else { node.v = value.value; value.hidden = false; }
      save();
    });
    value.addEventListener("input", function () { node.v = value.value; save(); });
    return [].concat(labelled(L.field, field), labelled(L.operator, op), labelled(L.value, value));
  }

  function dateEditor(node) {
    var direction = select([[">=", L.from], ["<", L.until]], node.d);
    var day = el("input", { type: "date", value: dayOf(node.t) });
    direction.addEventListener("change", function () { node.d = direction.value; save(); });
    day.addEventListener("change", function () { if (day.value) { node.t = secondsOf(day.value); save(); } });
    return [].concat(labelled(L.operator, direction), labelled(L.date, day));
  }

  function namedEditor(node, spec) {
    var input = el("input", { value: node[spec.key] || "", list: "rb-values-" + spec.values, size: "22" });
    input.addEventListener("input", function () { node[spec.key] = input.value; save(); });
    return labelled(L.value, input);
  }

  function jsonEditor(node) {
    var rest = {};
    Object.keys(node).forEach(function (key) { if (key !== "type") rest[key] = node[key]; });
    var area = el("textarea", { rows: "2", cols: "40", spellcheck: "false" });
    area.value = JSON.stringify(rest);
    area.addEventListener("input", function () {
      try {
        var parsed = JSON.parse(area.value || "{}");
        Object.keys(node).forEach(function (key) { if (key !== "type") delete node[key]; });
        Object.keys(parsed).forEach(function (key) { if (key !== "type") node[key] = parsed[key]; });
        area.removeAttribute("aria-invalid");
        area.title = "";
        save();
      } catch (error) {
        area.setAttribute("aria-invalid", "true");
        area.title = L.bad_json;
      }
    });
    return labelled(L.json, area);
  }

  function conditionRow(node, parent) {
    var spec = types[node.type] || { editor: "json" };
    var controls;
    if (spec.editor === "profile") controls = profileEditor(node);
    else if (spec.editor === "date") controls = dateEditor(node);
    else if (spec.editor === "named") controls = namedEditor(node, spec);
    else controls = jsonEditor(node);
    var remove = el("button", { type: "button", class: "link", text: L.remove });
    remove.addEventListener("click", function () {
      parent.c.splice(parent.c.indexOf(node), 1);
      draw();
    });
    return el("div", { class: "condition" }, [el("code", { text: node.type })].concat(controls, [remove]));
  }

  function groupBox(group, parent) {
    var op = select(OPS.map(function (o) { return [o, L[o]]; }), group.op);
    op.addEventListener("change", function () { group.op = op.value; save(); });
    var opId = uid("rb-op");
    op.id = opId;
    var legend = el("legend", {}, [el("label", { for: opId, text: L.match + " " }), op]);
    var box = el("fieldset", {}, [legend]);
    if (!group.c.length && !parent) box.appendChild(el("p", { class: "muted", text: L.empty }));
    group.c.forEach(function (child) {
      box.appendChild(child.type ? conditionRow(child, group) : groupBox(child, group));
    });
    var kind = select(data.types.map(function (t) { return [t.type, t.type]; }), data.types[0] && data.types[0].type);
    var addCondition = el("button", { type: "button", text: L.add_condition });
    addCondition.addEventListener("click", function () { group.c.push(fresh(kind.value)); draw(); });
    var addGroup = el("button", { type: "button", text: L.add_group });
    addGroup.addEventListener("click", function () {
      group.c.push({ op: "|", c: [fresh(kind.value)] });
      draw();
    });
    var tools = el("div", { class: "group-tools" }, labelled(L.type, kind).concat([addCondition, addGroup]));
    if (parent) {
      var remove = el("button", { type: "button", class: "link", text: L.remove });
      remove.addEventListener("click", function () { parent.c.splice(parent.c.indexOf(group), 1); draw(); });
      tools.appendChild(remove);
    }
    box.appendChild(tools);
    return box;
  }

  function draw() {
    root.replaceChildren(groupBox(rule, null));
    save();
  }

  function load() {
    var text = textarea.value.trim();
    try {
      var parsed = text ? JSON.parse(text) : { op: "&", c: [] };
      if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) throw new Error("shape");
      if (!parsed.op) parsed.op = "&";
      if (!Array.isArray(parsed.c)) parsed.c = [];
      rule = parsed;
      root.replaceChildren(groupBox(rule, null));
    } catch (error) {
      rule = null;
      root.replaceChildren(el("p", { class: "field-warning", text: L.unreadable }));
    }
  }

  datalists();
  textarea.addEventListener("change", load);
  load();

  // The tester beside the builder on the add form: asks the server to explain the rule as it
  // stands (unsaved) for one user, and shows each condition's pass or fail.
  function setUpTester(source) {
    var tester = document.getElementById("rule-tester");
    var button = document.getElementById("rule-try");
    if (!tester || !button || !window.fetch) return;
    var result = document.getElementById("rule-result");
    button.addEventListener("click", function () {
      var form = new FormData();
      var token = source.form && source.form.querySelector("[name=csrf_token]");
      form.append("csrf_token", token ? token.value : "");
      form.append("rule", source.value);
      form.append("user", document.getElementById("rule-user").value.trim());
      fetch(tester.getAttribute("data-url"), {
        method: "POST", body: form, credentials: "same-origin"
      }).then(function (response) { return response.json(); }).then(function (answer) {
        result.textContent = "";
        if (answer.error) {
          result.appendChild(el("p", { "class": "field-error", text: answer.error }));
          return;
        }
        result.appendChild(el("h2", { text: answer.heading }));
        var list = el("ul", { "class": "explain" });
        answer.lines.forEach(function (line) {
          var item = el("li", { "class": line.passed ? "pass" : "fail" }, [
            el("span", { "class": "mark", text: line.passed ? answer.marks.pass : answer.marks.fail }),
            document.createTextNode(" " + line.text)
          ]);
          item.style.paddingLeft = (line.depth * 1.2) + "rem";
          list.appendChild(item);
        });
        result.appendChild(list);
      });
    });
  }
})();
