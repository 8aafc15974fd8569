(function () {
  // A stand-in for Intercom's widget, for the offline demo and the browser tests. Like the
  // real one it replays the loader's queue and boots from window.intercomSettings when
  // nothing else asked; it records every call (window.__intercomStub), keeps an
  // intercom-session-<app_id> cookie while booted, and shows a badge saying whom it booted for.
  var script = document.currentScript;
  var origin = script ? new URL(script.src).origin : "";
  var appId = "__APP_ID__";
  var cookieName = "intercom-session-" + appId;
  var queue = (window.Intercom && window.Intercom.q) || [];
  var stub = (window.__intercomStub = { calls: [], boots: [], shutdowns: 0, verified: [] });
  function badge(text, booted) {
    var el = document.getElementById("intercom-demo-badge");
    if (!el) {
      el = document.createElement("div");
      el.id = "intercom-demo-badge";
      el.style.cssText = "position:fixed;right:16px;bottom:16px;padding:12px 16px;border-radius:12px;" +
        "font:14px system-ui,sans-serif;color:#fff;box-shadow:0 4px 16px rgba(0,0,0,.2);z-index:2147483647";
      document.body.appendChild(el);
    }
    el.style.background = booted ? "#1f6feb" : "#57606a";
    el.textContent = text;
  }
  function boot(settings) {
    settings = settings || window.intercomSettings || {};
    stub.boots.push(settings);
    document.cookie = cookieName + "=" + Math.random().toString(36).slice(2) + "; path=/";
    var jwt = settings.intercom_user_jwt;
    if (!jwt) {
      badge(settings.user_hash ? "Messenger booted for " + (settings.email || settings.user_id) + " (user_hash)"
                               : "Messenger booted for a visitor (no identity)", true);
      return;
    }
    fetch(origin + "/verify", { method: "POST", body: jwt })
      .then(function (r) { return r.json(); })
      .then(function (res) {
        stub.verified.push(res);
        if (res.ok) {
          badge("Messenger booted for " + (res.claims.email || res.claims.user_id) + " (JWT verified)", true);
        } else {
          badge("Messenger refused the JWT: " + res.error, false);
        }
      })
      .catch(function () { badge("Messenger could not reach the stand-in Intercom", false); });
  }
  function shutdown() {
    stub.shutdowns += 1;
    document.cookie = cookieName + "=; Max-Age=0; path=/";
    badge("Messenger shut down", false);
  }
  window.Intercom = function (command, arg) {
    stub.calls.push([command, arg === undefined ? null : arg]);
    if (command === "boot") boot(arg);
    else if (command === "shutdown") shutdown();
    else if (command === "update" && arg && arg.intercom_user_jwt) boot(arg);
  };
  var booted = false, shut = false;
  queue.forEach(function (args) {
    if (args[0] === "boot") booted = true;
    if (args[0] === "shutdown") shut = true;
    window.Intercom.apply(null, args);
  });
  // The real widget boots from window.intercomSettings when nothing else asked for it.
  if (!booted && !shut && window.intercomSettings) window.Intercom("boot", window.intercomSettings);
})();
