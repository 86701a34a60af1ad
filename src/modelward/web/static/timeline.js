// Drag across an alias timeline (svg.lanes[data-t0]) to zoom: the page reloads with
// since/until set to the dragged range. No library; the server draws everything else.
(function () {
  "use strict";
  function iso(us) {  // to the second: 2026-03-01T12:00:00Z
    return new Date(Math.round(us / 1000)).toISOString().replace(/\.\d+Z$/, "Z");
  }
  document.querySelectorAll("svg.lanes[data-t0]").forEach(function (svg) {
    var d = svg.dataset, t0 = +d.t0, t1 = +d.t1, left = +d.left, plot = +d.plot;
    var ns = "http://www.w3.org/2000/svg", start = null;
    var box = document.createElementNS(ns, "rect");
    box.setAttribute("class", "brush");
    box.setAttribute("y", 0);
    box.setAttribute("height", svg.viewBox.baseVal.height);
    box.setAttribute("width", 0);
    function at(ev) {  // the time under the pointer, clamped to the axis
      var r = svg.getBoundingClientRect(), w = +d.width;
      var x = (ev.clientX - r.left) * w / r.width;
      var f = Math.min(Math.max((x - left) / plot, 0), 1);
      return { x: left + f * plot, t: t0 + f * (t1 - t0) };
    }
    svg.addEventListener("pointerdown", function (ev) {
      if (ev.button !== 0 || ev.target.closest("a")) { return; }
      start = at(ev);
      box.setAttribute("x", start.x);
      box.setAttribute("width", 0);
      svg.appendChild(box);
      svg.setPointerCapture(ev.pointerId);
      ev.preventDefault();
    });
    svg.addEventListener("pointermove", function (ev) {
      if (!start) { return; }
      var p = at(ev);
      box.setAttribute("x", Math.min(start.x, p.x));
      box.setAttribute("width", Math.abs(p.x - start.x));
    });
    svg.addEventListener("pointerup", function (ev) {
      if (!start) { return; }
      var p = at(ev), a = Math.min(start.t, p.t), b = Math.max(start.t, p.t);
      start = null;
      if (Math.abs(+box.getAttribute("width")) < 4) { box.remove(); return; }  // a click
      var q = new URLSearchParams(window.location.search);
      q.set("since", iso(a));
      q.set("until", iso(b));
      window.location.search = q.toString();
    });
  });
})();
