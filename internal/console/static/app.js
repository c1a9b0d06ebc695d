// Vigil console: live updates and dialogs. The pages work without this file;
// with it, htmx reloads each page's live part when the cluster's log moves.
"use strict";
(function () {
  // Open a dialog htmx just swapped in as a modal (Escape or Cancel closes it).
  function openDialogs(root) {
    root.querySelectorAll("dialog[data-modal]").forEach(function (d) {
      if (!d.open) {
        d.showModal();
      }
    });
  }
  document.addEventListener("htmx:afterSwap", function (e) {
    openDialogs(e.detail.target);
  });
  document.addEventListener("click", function (e) {
    var b = e.target.closest("[data-close]");
    if (!b) {
      return;
    }
    e.preventDefault();
    var d = b.closest("dialog");
    if (d) {
      d.close();
      d.remove();
    }
  });
  document.addEventListener("close", function (e) {
    if (e.target.matches && e.target.matches("dialog[data-modal]")) {
      e.target.remove();
    }
  }, true);

  // Live updates: one server-sent event per committed log event. Each becomes a
  // "vigilchange" event that the live regions listen to (hx-trigger).
  var src = document.body.dataset.stream;
  var dot = document.getElementById("live-dot");
  function mark(on, title) {
    if (dot) {
      dot.className = on ? "live on" : "live off";
      dot.title = title;
    }
  }
  if (src && window.EventSource) {
    var es = new EventSource(src);
    es.addEventListener("open", function () {
      mark(true, "live updates: connected");
    });
    es.addEventListener("change", function (e) {
      var detail = {};
      try {
        detail = JSON.parse(e.data);
      } catch (err) {
        detail = {};
      }
      document.body.dataset.lastEvent = detail.index || "";
      htmx.trigger(document.body, "vigilchange", detail);
    });
    es.addEventListener("error", function () {
      if (es.readyState === EventSource.CLOSED) {
        // Refused (the session ended): the reload lands on the login page.
        mark(false, "live updates: stopped");
        setTimeout(function () { window.location.reload(); }, 3000);
      } else {
        mark(false, "live updates: reconnecting");
      }
    });
  }
})();
