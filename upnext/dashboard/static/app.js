// upnext dashboard: live regions and actions. Vanilla, no build step, no framework.
// Every element with data-live and an id is replaced by its fresh copy every 2 s (the server
// answers from one snapshot shared by all viewers); actions POST with the CSRF token.
(function () {
  "use strict";
  var POLL_MS = 2000;
  var meta = function (name) { var m = document.querySelector('meta[name="' + name + '"]'); return m ? m.content : ""; };
  var root = meta("root");

  function flash(text, bad) {
    var box = document.getElementById("flash");
    box.textContent = text;
    box.className = bad ? "flash bad" : "flash";
    box.hidden = false;
  }

  function refresh() {
    if (!document.querySelector("[data-live]")) { return Promise.resolve(); }
    return fetch(location.href, { headers: { "X-Live": "1" }, credentials: "same-origin" })
      .then(function (r) { if (!r.ok) { throw new Error(r.status); } return r.text(); })
      .then(function (html) {
        var fresh = new DOMParser().parseFromString(html, "text/html");
        document.querySelectorAll("[data-live][id]").forEach(function (el) {
          var next = fresh.getElementById(el.id);
          if (next && next.innerHTML !== el.innerHTML) { el.replaceWith(document.importNode(next, true)); }
        });
        document.getElementById("live-dot").classList.remove("stale");
      })
      .catch(function () { document.getElementById("live-dot").classList.add("stale"); });
  }

  function post(url, body) {
    return fetch(url, {
      method: "POST", credentials: "same-origin", body: body || "",
      headers: { "X-CSRF-Token": meta("csrf-token"), "Content-Type": "application/x-www-form-urlencoded",
                 "Accept": "application/json" }
    }).then(function (r) {
      return r.json().then(function (value) { if (!r.ok) { throw new Error(value.error || r.status); } return value; });
    });
  }

  function summary(value) {
    return Object.keys(value).filter(function (k) { return typeof value[k] !== "object"; })
      .map(function (k) { return k + ": " + value[k]; }).join(", ");
  }

  function act(button) {
    if (button.dataset.confirm && !window.confirm(button.dataset.confirm)) { return; }
    button.disabled = true;
    post(button.dataset.action)
      .then(function (value) { flash("Done: " + summary(value)); return refresh(); })
      .catch(function (err) { flash(String(err.message || err), true); })
      .then(function () { button.disabled = false; });
  }

  function bulk(button) {
    var form = document.getElementById("bulk");
    var params = new URLSearchParams(new FormData(form));
    var action = button.dataset.bulk;
    if (!params.get("function")) { flash("Choose a function first: a bulk action acts on one function's jobs.", true); return; }
    fetch(root + "/api/bulk/" + action + "?" + params, { credentials: "same-origin" })
      .then(function (r) { return r.json().then(function (v) { if (!r.ok) { throw new Error(v.error); } return v; }); })
      .then(function (preview) {
        if (!preview.count) { flash("No job matches that filter."); return null; }
        var what = action + " " + preview.count + (preview.more ? "+" : "") + " job(s) of " + params.get("function");
        if (!window.confirm(what.charAt(0).toUpperCase() + what.slice(1) + "?")) { return null; }
        params.set("expect", preview.count);
        return post(root + "/api/bulk/" + action, params.toString()).then(function (value) {
          flash("Done: " + value.done + " of " + value.matched + " " + action + (value.action === "retry" ? "ed" : "led"));
          return refresh();
        });
      })
      .catch(function (err) { flash(String(err.message || err), true); });
  }

  document.addEventListener("click", function (event) {
    var target = event.target.closest("[data-action], [data-bulk]");
    if (!target) { return; }
    event.preventDefault();
    if (target.dataset.action) { act(target); } else { bulk(target); }
  });
  setInterval(function () { if (!document.hidden) { refresh(); } }, POLL_MS);
})();
