// The table of changed rows: filtered by sync, action and free text, shown a page at a time.
// Rows come from the inert JSON block `plan-rows`; every value reaches the page through
// `textContent`, never as markup.
(function () {
  "use strict";
  var PAGE = 100;
  var ACTIONS = ["create", "update", "remove"];
  var SIGNS = ["+", "~", "-"];
  var meta = JSON.parse(document.getElementById("plan-meta").textContent);
  var rows = JSON.parse(document.getElementById("plan-rows").textContent);
  var search = document.getElementById("search");
  var syncFilter = document.getElementById("sync-filter");
  var actionFilter = document.getElementById("action-filter");
  var body = document.getElementById("rows-body");
  var count = document.getElementById("match-count");
  var prev = document.getElementById("prev");
  var next = document.getElementById("next");
  var pageLabel = document.getElementById("page");
  var haystacks = null;
  var matches = [];
  var page = 0;

  function number(n) { return n.toLocaleString("en"); }

  // Lower-case text searched for a row: key, record id, property names and values. Built on
  // the first search, so a page that is only read costs nothing more.
  function haystack(i) {
    if (haystacks === null) { haystacks = new Array(rows.length); }
    var h = haystacks[i];
    if (h === undefined) {
      var r = rows[i];
      var parts = [r[2], r[3] || ""];
      var fields = r[4];
      for (var f = 0; f < fields.length; f++) {
        parts.push(fields[f][0], fields[f][1] === null ? "" : fields[f][1], fields[f][2] === null ? "" : fields[f][2]);
      }
      h = haystacks[i] = parts.join("\n").toLowerCase();
    }
    return h;
  }

  function filter() {
    var terms = search.value.toLowerCase().split(/\s+/).filter(function (t) { return t.length > 0; });
    var sync = syncFilter.value === "" ? -1 : Number(syncFilter.value);
    var action = actionFilter.value === "" ? -1 : ACTIONS.indexOf(actionFilter.value);
    matches = [];
    for (var i = 0; i < rows.length; i++) {
      var r = rows[i];
      if (sync >= 0 && r[0] !== sync) { continue; }
      if (action >= 0 && r[1] !== action) { continue; }
      if (terms.length > 0) {
        var h = haystack(i), all = true;
        for (var t = 0; t < terms.length; t++) {
          if (h.indexOf(terms[t]) < 0) { all = false; break; }
        }
        if (!all) { continue; }
      }
      matches.push(i);
    }
    page = 0;
    render();
  }

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) { e.className = cls; }
    if (text !== undefined && text !== null) { e.textContent = text; }
    return e;
  }

  function value(v, cls) {
    if (v === null) { return el("span", "null", "null"); }
    if (v === "") { return el("span", "empty", "\"\""); }
    return el("span", "value " + cls, v);
  }

  function fieldsCell(r) {
    var td = el("td", "fields");
    var sync = meta.syncs[r[0]];
    var fields = r[4];
    for (var f = 0; f < fields.length; f++) {
      var d = el("div", "field");
      d.appendChild(el("span", "prop", fields[f][0] + ": "));
      if (r[1] === 0) {
        d.appendChild(value(fields[f][2], "after"));
      } else if (r[1] === 1) {
        d.appendChild(value(fields[f][1], "before"));
        d.appendChild(document.createTextNode(" → "));
        d.appendChild(value(fields[f][2], "after"));
      } else {
        d.appendChild(value(fields[f][1], "before"));
        d.appendChild(document.createTextNode(" → "));
        d.appendChild(el("span", "empty", "\"\""));
      }
      td.appendChild(d);
    }
    if (r[1] === 2 && fields.length === 0) {
      td.appendChild(el("div", "note", sync.on_remove === "delete" ? "delete the record" : "leave the record, forget the row"));
    }
    if (r[5]) { td.appendChild(el("div", "note", r[5])); }
    return td;
  }

  function render() {
    var pages = Math.max(1, Math.ceil(matches.length / PAGE));
    if (page >= pages) { page = pages - 1; }
    var start = page * PAGE;
    var end = Math.min(start + PAGE, matches.length);
    var frag = document.createDocumentFragment();
    for (var j = start; j < end; j++) {
      var r = rows[matches[j]];
      var tr = el("tr", "row " + ACTIONS[r[1]]);
      tr.setAttribute("data-action", ACTIONS[r[1]]);
      tr.setAttribute("data-sync", meta.syncs[r[0]].name);
      tr.setAttribute("data-key", r[2]);
      tr.appendChild(el("td", "sync", meta.syncs[r[0]].name));
      tr.appendChild(el("td", "action", SIGNS[r[1]] + " " + ACTIONS[r[1]]));
      tr.appendChild(el("td", "key", r[2]));
      tr.appendChild(el("td", "id", r[3] || ""));
      tr.appendChild(fieldsCell(r));
      frag.appendChild(tr);
    }
    body.textContent = "";
    body.appendChild(frag);
    count.textContent = number(matches.length) + " of " + number(rows.length) + " rows";
    pageLabel.textContent = "page " + number(page + 1) + " of " + number(pages);
    prev.disabled = page === 0;
    next.disabled = page + 1 >= pages;
  }

  var timer = null;
  search.addEventListener("input", function () {
    clearTimeout(timer);
    timer = setTimeout(filter, 120);
  });
  search.addEventListener("change", filter);
  syncFilter.addEventListener("change", filter);
  actionFilter.addEventListener("change", filter);
  prev.addEventListener("click", function () { page -= 1; render(); });
  next.addEventListener("click", function () { page += 1; render(); });
  filter();
  document.documentElement.setAttribute("data-ready", "true");
})();
