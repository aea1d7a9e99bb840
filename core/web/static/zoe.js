// Zoe's pages work without this script; it only adds live updates to an
// execution's page: states and events from the event stream, and each
// service's log as it is written.
"use strict";
(function () {
  var root = document.getElementById("execution");
  if (!root || !window.EventSource) {
    return;
  }
  var terminal = { terminated: true, error: true };
  var statusEl = document.getElementById("ex-status");
  var eventsEl = document.getElementById("events");
  var seen = {};

  function badge(status) {
    if (status === "running") return "badge ok";
    if (status === "error") return "badge bad";
    if (status === "terminated" || status === "stopped") return "badge done";
    return "badge wait";
  }

  function setStatus(el, status) {
    el.textContent = status;
    el.className = badge(status);
  }

  // Endpoints are published as services start: when one starts, the
  // endpoints part of the page is read again (a fragment, parsed without
  // running anything) and put in place of the old one.
  var refreshing = false, again = false;
  function refreshEndpoints() {
    if (!window.fetch || !window.DOMParser) return;
    if (refreshing) { again = true; return; }
    refreshing = true;
    fetch(location.pathname.replace(/\/$/, "") + "/endpoints", { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (html === null) return;
        var fresh = new DOMParser().parseFromString(html, "text/html").getElementById("endpoints-box");
        var cur = document.getElementById("endpoints-box");
        if (fresh && cur) cur.replaceWith(document.importNode(fresh, true));
      })
      .catch(function () {})
      .then(function () {
        refreshing = false;
        if (again) { again = false; refreshEndpoints(); }
      });
  }

  function onEvent(msg) {
    if (msg.lastEventId && seen[msg.lastEventId]) return;
    seen[msg.lastEventId] = true;
    var ev;
    try { ev = JSON.parse(msg.data); } catch (e) { return; }
    if (String(ev.execution_id) !== root.dataset.id) return;
    if (ev.service) {
      var cells = root.querySelectorAll("[data-service]");
      for (var i = 0; i < cells.length; i++) {
        if (cells[i].dataset.service === ev.service) setStatus(cells[i], ev.to);
      }
    } else if (statusEl) {
      setStatus(statusEl, ev.to);
      var waiting = document.getElementById("ex-waiting");
      if (waiting && ev.to !== "queued" && ev.to !== "submitted") waiting.hidden = true;
    }
    if (eventsEl) {
      var li = document.createElement("li");
      var when = new Date(ev.time).toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");
      li.textContent = when + ": " + (ev.service || "execution") + " " + (ev.from || "") + " → " + ev.to +
        (ev.reason ? " (" + ev.reason + ")" : "");
      eventsEl.appendChild(li);
    }
    if (ev.to === "running") refreshEndpoints();
    if (!ev.service && terminal[ev.to]) {
      events.close();
    }
  }

  if (root.dataset.active !== "true") return;
  var url = root.dataset.events + "?after=" + encodeURIComponent(root.dataset.after || "0");
  var events = new EventSource(url);
  ["execution", "service", "message"].forEach(function (t) { events.addEventListener(t, onEvent); });

  // Each service's log: the stream sends the last lines again, then new
  // ones; the page keeps at most maxLines.
  var maxLines = 2000;
  var logs = root.querySelectorAll("pre[data-live]");
  for (var i = 0; i < logs.length; i++) {
    (function (pre) {
      var first = true;
      var src = new EventSource(pre.dataset.live);
      src.onmessage = function (m) {
        if (first) { pre.textContent = ""; first = false; }
        var atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
        pre.appendChild(document.createTextNode(m.data + "\n"));
        while (pre.childNodes.length > maxLines) pre.removeChild(pre.firstChild);
        if (atEnd) pre.scrollTop = pre.scrollHeight;
      };
      src.addEventListener("end", function () { src.close(); });
      src.onerror = function () { if (src.readyState === EventSource.CLOSED) src.close(); };
    })(logs[i]);
  }
})();
