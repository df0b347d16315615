/* fdnet workspace: the only script of the pages (served from the package; the CSP allows no inline script).
   It draws a person's two-step network from the JSON block #ego-data, sorts tables on a header click and
   keeps a review form's reason codes to those of the decision chosen. Text goes in with textContent only. */
(function () {
  "use strict";
  function byId(id) { return document.getElementById(id); }

  // --- the ego network -----------------------------------------------------------------------
  var box = byId("ego"), dataEl = byId("ego-data");
  if (box && dataEl && window.vis) {
    var E = JSON.parse(dataEl.textContent || "{}");
    var people = E.people || [], ties = E.edges || [], ego = (E.egos || [])[0];
    if (!ego || !people.length) {
      box.textContent = "No ties in the run's network.";
    } else {
      var co = people.map(function () { return []; }), vi = people.map(function () { return []; });
      ties.forEach(function (t) { (t[2] === 0 ? co : vi)[t[0]].push(t[1]); (t[2] === 0 ? co : vi)[t[1]].push(t[0]); });
      var p = ego.p, dist = {}; dist[p] = 0;
      co[p].forEach(function (q) { if (!(q in dist)) { dist[q] = 1; } });
      co[p].forEach(function (q) { co[q].forEach(function (r) { if (!(r in dist)) { dist[r] = 2; } }); });
      vi[p].forEach(function (q) { if (!(q in dist) || dist[q] > 1) { dist[q] = 1; } });
      var base = new Date((E.base || "2000-01-01") + "T00:00:00Z").getTime();
      function day(k) { return k === null || k === undefined ? "?" : new Date(base + k * 86400000).toISOString().slice(0, 10); }
      var nodes = Object.keys(dist).map(Number).map(function (i) {
        return { id: i, label: people[i], title: people[i] + (dist[i] ? " (" + dist[i] + " step" + (dist[i] > 1 ? "s" : "") + ")" : " (this person)"),
                 color: i === p ? "#c0392b" : (dist[i] === 1 ? "#2e6da4" : "#9bb7d4"), shape: "dot", size: i === p ? 18 : 10 };
      });
      var edges = [];
      ties.forEach(function (t, k) {
        if (t[0] in dist && t[1] in dist) {
          var first = t[4], last = (t[4] !== null && t[5] !== null) ? t[4] + t[5] : null;
          edges.push({ id: k, from: t[0], to: t[1], dashes: t[2] === 1, width: Math.min(1 + t[3], 6),
                       color: t[2] === 1 ? "#b03a2e" : "#7f8c8d",
                       title: (t[2] === 1 ? "victimization" : "co-offending") + ": " + t[3] + " incident(s), " + day(first) +
                              (last !== null && last !== first ? " to " + day(last) : "") + " — " + String(t[6] || "").split(";").join(", ") });
        }
      });
      // vis-network sets titles with innerHTML: hand it text nodes so IDs from the input stay inert
      nodes.forEach(function (n) { var s = document.createElement("span"); s.textContent = n.title; n.title = s; });
      edges.forEach(function (e) { var s = document.createElement("span"); s.textContent = e.title; e.title = s; });
      new vis.Network(box, { nodes: new vis.DataSet(nodes), edges: new vis.DataSet(edges) },
        { physics: { stabilization: { iterations: 300 } }, interaction: { hover: true, tooltipDelay: 120 },
          nodes: { font: { size: 12 } } });
    }
  }

  // --- sortable tables -------------------------------------------------------------------------
  Array.prototype.forEach.call(document.querySelectorAll("table.sortable"), function (table) {
    var ths = table.tHead ? table.tHead.rows[0].cells : [];
    Array.prototype.forEach.call(ths, function (th, col) {
      th.addEventListener("click", function () {
        var body = table.tBodies[0], asc = th.getAttribute("aria-sort") !== "ascending";
        Array.prototype.forEach.call(ths, function (o) { o.removeAttribute("aria-sort"); });
        th.setAttribute("aria-sort", asc ? "ascending" : "descending");
        var rows = Array.prototype.slice.call(body.rows);
        rows.sort(function (a, b) {
          var x = a.cells[col].textContent.trim(), y = b.cells[col].textContent.trim();
          var nx = parseFloat(x), ny = parseFloat(y);
          var c = (!isNaN(nx) && !isNaN(ny)) ? nx - ny : x.localeCompare(y);
          return asc ? c : -c;
        });
        rows.forEach(function (r) { body.appendChild(r); });
      });
    });
  });

  // --- reason codes follow the decision ------------------------------------------------------------
  Array.prototype.forEach.call(document.querySelectorAll(".decide form"), function (form) {
    var select = form.querySelector("select[name=reason_code]");
    if (!select) { return; }
    function sync() {
      var chosen = form.querySelector("input[name=decision]:checked");
      Array.prototype.forEach.call(select.querySelectorAll("optgroup"), function (g) {
        var on = !chosen || g.label === chosen.value;
        g.disabled = !on; g.hidden = !on;
      });
      var opt = select.options[select.selectedIndex];
      if (opt && opt.parentNode && opt.parentNode.disabled) { select.value = ""; }
    }
    Array.prototype.forEach.call(form.querySelectorAll("input[name=decision]"), function (r) { r.addEventListener("change", sync); });
    sync();
  });
})();
