/* The findings page: poll the guard run's progress while one runs; open the guard a
   #MWxxx link points at; count the findings opened since the page was opened from the
   event stream (/findings/events). Plain JS, no build step. */
(function () {
  "use strict";
  var line = document.getElementById("run-state");
  function openTarget() {
    var id = decodeURIComponent(location.hash.slice(1));
    var el = id && document.getElementById(id);
    if (el && el.tagName === "DETAILS") { el.open = true; }
  }
  window.addEventListener("hashchange", openTarget);
  openTarget();
  var live = document.getElementById("live-new");
  if (live && window.EventSource) {
    var opened = {};
    var count = 0;
    var stream = new EventSource("/findings/events");
    stream.addEventListener("finding.opened", function (e) {
      var key;
      try { key = JSON.parse(e.data).key; } catch (err) { return; }
      if (!key || opened[key]) { return; }
      opened[key] = true;
      count += 1;
      document.getElementById("live-new-text").textContent = count + " new finding" +
        (count === 1 ? "" : "s") + " since you opened the page.";
      live.querySelector("a").href = location.pathname + location.search;
      live.hidden = false;
    });
    window.addEventListener("pagehide", function () { stream.close(); });
  }
  if (!line) { return; }
  var shownRun = line.dataset.run;
  var bar = document.getElementById("run-progress");
  var text = document.getElementById("run-progress-text");
  var box = line.querySelector(".run-progress");
  var again = document.getElementById("run-again");
  var newer = document.getElementById("run-newer");
  function show(state) {
    line.dataset.state = state.status;
    var running = state.status === "running";
    box.hidden = !running;
    again.hidden = running;
    if (running && state.progress) {
      bar.max = state.progress.total || 1;
      bar.value = state.progress.done;
      text.textContent = "Running the guards: " + (state.progress.guard || "") + " (" +
        state.progress.done + "/" + state.progress.total + ")…";
    }
    if (!running && state.run && state.run !== shownRun) {
      if (!shownRun) { location.reload(); return false; }
      newer.href = location.pathname + location.search;
      newer.hidden = false;
    }
    return running;
  }
  function poll() {
    fetch("/findings/state", {credentials: "same-origin", cache: "no-store"})
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (state) {
        if (state && show(state)) { setTimeout(poll, 1000); }
      })
      .catch(function () { setTimeout(poll, 3000); });
  }
  if (line.dataset.state === "running" || !shownRun) { setTimeout(poll, 500); }
})();
