// Lockgate console: dialogs and live updates. Plain JavaScript, no build step.
//
// Dialogs: a button with data-open-dialog="ID" opens <dialog id=ID>, first copying its data-*
// values into the dialog: [data-fill-text=K] gets textContent, [data-fill-value=K] gets value,
// [data-fill-action=K] (a form) gets its action, [data-fill-href=K] becomes a link when the
// value is an http(s) URL. Nothing is ever inserted as HTML.
//
// Live updates: <body data-live-events=URL data-live-page=URL> listens to the server-sent
// events at URL; on "changed" it re-reads the page and swaps in the new #live region. Dialogs
// and what is typed in them sit outside #live, so an update never loses them. With
// data-live-poll=MS the region is also re-read every MS milliseconds until it holds an element
// with data-live-done.
(function () {
  "use strict";

  function isWebUrl(s) {
    return /^https?:\/\//i.test((s || "").trim());
  }

  function fill(dialog, data) {
    dialog.querySelectorAll("[data-fill-text]").forEach(function (el) {
      var v = data[el.dataset.fillText];
      el.textContent = v === undefined || v === "" ? "—" : v;
    });
    dialog.querySelectorAll("[data-fill-value]").forEach(function (el) {
      el.value = data[el.dataset.fillValue] || "";
    });
    dialog.querySelectorAll("[data-fill-action]").forEach(function (el) {
      var v = data[el.dataset.fillAction];
      if (v) el.setAttribute("action", v);
    });
    dialog.querySelectorAll("[data-fill-href]").forEach(function (el) {
      var v = data[el.dataset.fillHref] || "";
      el.textContent = v || "—";
      if (isWebUrl(v)) {
        el.setAttribute("href", v);
        el.setAttribute("target", "_blank");
        el.setAttribute("rel", "noopener");
      } else {
        el.removeAttribute("href");
      }
    });
  }

  function openDialog(dialog) {
    if (dialog.open) dialog.close();
    if (typeof dialog.showModal === "function") dialog.showModal();
    else dialog.setAttribute("open", "");
    var first = dialog.querySelector("textarea, input:not([type=hidden]), button");
    if (first) first.focus();
  }

  document.addEventListener("click", function (event) {
    var opener = event.target.closest("[data-open-dialog]");
    if (opener) {
      var dialog = document.getElementById(opener.dataset.openDialog);
      if (dialog) {
        fill(dialog, opener.dataset);
        openDialog(dialog);
      }
      return;
    }
    var closer = event.target.closest("[data-close-dialog]");
    if (closer) {
      var d = closer.closest("dialog");
      if (d) d.close();
    }
  });

  // A dialog the server rendered open (a direct review link) becomes modal: focus moves into
  // it, Tab stays inside, Escape closes it.
  function promoteOpenDialogs() {
    document.querySelectorAll("dialog[open]").forEach(openDialog);
  }

  // Double submission guard: a form's buttons are disabled once it is sent.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    setTimeout(function () {
      form.querySelectorAll("button[type=submit]").forEach(function (b) {
        b.disabled = true;
      });
    }, 0);
  });

  function startLive() {
    var events = document.body.dataset.liveEvents;
    var page = document.body.dataset.livePage;
    var live = document.getElementById("live");
    if (!events || !page || !live || !window.EventSource) return;
    var busy = false;
    var again = false;
    function refresh() {
      if (busy) {
        again = true;
        return;
      }
      busy = true;
      fetch(page, { credentials: "same-origin", headers: { Accept: "text/html" } })
        .then(function (r) {
          return r.ok ? r.text() : null;
        })
        .then(function (text) {
          if (!text) return;
          var doc = new DOMParser().parseFromString(text, "text/html");
          var next = doc.getElementById("live");
          if (next && next.innerHTML !== live.innerHTML) {
            live.innerHTML = next.innerHTML;
          }
        })
        .catch(function () {})
        .then(function () {
          busy = false;
          if (again) {
            again = false;
            refresh();
          }
        });
    }
    // A page whose live region changes without an engine commit (a running action's log)
    // is also re-read on a timer, until the region says it is done.
    var poll = parseInt(document.body.dataset.livePoll || "", 10);
    if (poll > 0) {
      var timer = setInterval(function () {
        if (live.querySelector("[data-live-done]")) clearInterval(timer);
        else refresh();
      }, poll);
    }
    var source = new EventSource(events);
    source.addEventListener("changed", refresh);
    // After a lost connection, re-read once in case a change was missed while away.
    source.addEventListener("open", function () {
      refresh();
    });
  }

  function ready() {
    promoteOpenDialogs();
    startLive();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", ready);
  else ready();
})();
