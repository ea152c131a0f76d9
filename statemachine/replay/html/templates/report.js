/* The replay report's only script: filter the rejected lines, find and show an entity.
   Everything it shows is already in the page; it fetches nothing. Text from the log is
   set with textContent, never parsed as markup. */
(function () {
  "use strict";
  var SHOWN = 200;  // matches listed at once

  function plural(n, one, many) { return n.toLocaleString("en") + " " + (n === 1 ? one : many); }

  // -- rejected lines: by reason and by text ----------------------------------------------
  var reason = document.getElementById("reason-select");
  var words = document.getElementById("rejected-text");
  var rows = Array.prototype.slice.call(document.querySelectorAll("#rejected-lines tbody tr"));
  var rejectedCount = document.getElementById("rejected-count");
  function filterRejected() {
    var wanted = reason.value, needle = words.value.trim().toLowerCase(), shown = 0;
    rows.forEach(function (row) {
      var keep = (!wanted || row.getAttribute("data-reason") === wanted) &&
                 (!needle || row.textContent.toLowerCase().indexOf(needle) !== -1);
      row.hidden = !keep;
      if (keep) { shown += 1; }
    });
    rejectedCount.textContent = "showing " + shown.toLocaleString("en") + " of " + plural(rows.length, "line", "lines");
  }
  if (reason && words && rejectedCount) {
    reason.addEventListener("change", filterRejected);
    words.addEventListener("input", filterRejected);
    filterRejected();
  }

  // -- entities: search, choose, show -------------------------------------------------------
  var data = document.getElementById("entity-list");
  var search = document.getElementById("entity-search");
  var results = document.getElementById("entity-results");
  var count = document.getElementById("entity-count");
  var detail = document.getElementById("entity-detail");
  if (!data || !search || !results || !count || !detail) { return; }
  var listing = JSON.parse(data.textContent);
  var entries = [];
  listing.groups.forEach(function (group) {
    var kind = group[0], state = group[1];
    group[2].forEach(function (id) {
      var subject = kind + "/" + id;
      entries.push({ subject: subject, state: state, kind: kind,
                     key: (subject + " " + state).toLowerCase(),
                     detail: listing.details[subject] || null });
    });
  });
  var chosen = null;

  function matches(query) {
    var terms = query.toLowerCase().split(/\s+/).filter(Boolean);
    if (!terms.length) { return entries; }
    return entries.filter(function (entry) {
      return terms.every(function (term) { return entry.key.indexOf(term) !== -1; });
    });
  }

  function button(entry) {
    var item = document.createElement("li");
    var b = document.createElement("button");
    b.type = "button";
    b.setAttribute("data-subject", entry.subject);
    b.setAttribute("aria-pressed", String(entry.subject === chosen));
    b.setAttribute("aria-controls", "entity-detail");
    var name = document.createElement("span");
    name.textContent = entry.subject;
    var tag = document.createElement("span");
    tag.className = "tag";
    tag.textContent = entry.state + (entry.detail ? " · diagram" : "");
    b.appendChild(name);
    b.appendChild(tag);
    b.addEventListener("click", function () { choose(entry.subject); });
    item.appendChild(b);
    return item;
  }

  function list() {
    var found = matches(search.value);
    // Exact subject first: "order/O-1" before "order/O-10".
    var exact = search.value.trim().toLowerCase();
    found.sort(function (a, b) { return (b.subject.toLowerCase() === exact) - (a.subject.toLowerCase() === exact); });
    results.textContent = "";
    found.slice(0, SHOWN).forEach(function (entry) { results.appendChild(button(entry)); });
    count.textContent = plural(found.length, "entity matches", "entities match") +
      (found.length > SHOWN ? "; the first " + SHOWN + " are listed: type more to narrow" : "");
  }

  function find(subject) {
    for (var i = 0; i < entries.length; i += 1) { if (entries[i].subject === subject) { return entries[i]; } }
    return null;
  }

  function choose(subject) {
    var entry = find(subject);
    if (!entry) { return; }
    chosen = subject;
    detail.textContent = "";
    var template = entry.detail ? document.getElementById(entry.detail) : null;
    if (template) {
      detail.appendChild(template.content.cloneNode(true));
    } else {
      var title = document.createElement("h3");
      title.textContent = entry.subject + " ";
      var state = document.createElement("span");
      state.className = "state";
      state.textContent = "now " + entry.state;
      title.appendChild(state);
      var note = document.createElement("p");
      note.textContent = "Not shown in full in this file (it shows a sample). Its diagram, steps and " +
        "ledger lines: python -m statemachine diagram LOG " + entry.subject;
      detail.appendChild(title);
      detail.appendChild(note);
    }
    Array.prototype.forEach.call(results.querySelectorAll("button"), function (b) {
      b.setAttribute("aria-pressed", String(b.getAttribute("data-subject") === subject));
    });
    try { history.replaceState(null, "", "#entity=" + encodeURIComponent(subject)); } catch (e) { /* a sandboxed viewer */ }
  }

  search.addEventListener("input", list);
  search.addEventListener("keydown", function (event) {
    if (event.key === "Enter") {
      var first = results.querySelector("button");
      if (first) { first.click(); }
    }
  });
  var hash = /^#entity=(.+)$/.exec(location.hash);
  if (hash) {
    var subject = decodeURIComponent(hash[1]);
    search.value = subject;
    list();
    choose(subject);
  } else {
    list();
  }
})();
