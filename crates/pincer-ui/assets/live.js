// Pincer's web page, live: the only script, served from the page's own origin (the CSP allows
// nothing else). Pages that show live state mark <body data-live="SELECTOR">; a task, approval
// or run event from /ui/events (the signed-in user's own, for members) re-fetches the page and
// replaces that element. Answer text streams into elements marked data-stream="<task id>".
// Without JavaScript the pages reload themselves instead (<noscript> refresh).
(function () {
  "use strict";
  var target = document.body.getAttribute("data-live");
  if (!target || !window.EventSource || !window.fetch) {
    return;
  }
  var events = new EventSource("/ui/events");
  var pending = null;
  function refresh() {
    if (pending) {
      return;
    }
    pending = setTimeout(function () {
      pending = null;
      fetch(window.location.href, { credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.text() : null; })
        .then(function (html) {
          if (!html) {
            return;
          }
          var fresh = new DOMParser().parseFromString(html, "text/html").querySelector(target);
          var old = document.querySelector(target);
          // Replaced only when it changed: forms being filled in and buttons about to be
          // pressed stay as they are otherwise.
          if (fresh && old && fresh.innerHTML !== old.innerHTML) {
            old.replaceWith(fresh);
          }
        });
    }, 250);
  }
  // Whatever changed between rendering the page and subscribing is fetched once subscribed;
  // and every 10 s anyway, in case an event was missed (live events between nodes are best
  // effort).
  events.addEventListener("open", refresh);
  setInterval(refresh, 10000);
  [
    "task.queued", "task.running", "task.succeeded", "task.failed", "task.canceled",
    "task.timed_out", "task.recovered", "approval.requested", "approval.decided",
    "run.tool_call", "run.finished", "gap"
  ].forEach(function (kind) {
    events.addEventListener(kind, refresh);
  });
  events.addEventListener("run.text", function (e) {
    var d = JSON.parse(e.data);
    var el = document.querySelector('[data-stream="' + d.task + '"]');
    if (el) {
      el.textContent += d.text;
    }
  });
})();
