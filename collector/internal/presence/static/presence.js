// The presence pages' one script (served as a file: the pages' CSP allows
// no inline script). It runs the WebAuthn ceremony the page is for and
// posts the browser's answer back to the same path.
(function () {
  "use strict";
  var body = document.body;
  var kind = body.dataset.kind;
  var base = location.pathname.replace(/\/+$/, "");
  var button = document.getElementById("go");
  var status = document.getElementById("status");
  if (!button || !status) {
    return;
  }

  function toB64u(buf) {
    var bytes = new Uint8Array(buf), s = "";
    for (var i = 0; i < bytes.length; i++) {
      s += String.fromCharCode(bytes[i]);
    }
    return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }
  function fromB64u(s) {
    s = s.replace(/-/g, "+").replace(/_/g, "/");
    while (s.length % 4) {
      s += "=";
    }
    var bin = atob(s), out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) {
      out[i] = bin.charCodeAt(i);
    }
    return out.buffer;
  }
  function show(text, cls, state) {
    status.textContent = text;
    status.className = cls || "";
    if (state) {
      body.dataset.state = state;
    }
  }
  function post(path, payload) {
    return fetch(base + path, {
      method: "POST", credentials: "same-origin", headers: {"Content-Type": "application/json"},
      body: JSON.stringify(payload || {})
    }).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (j) {
        if (!r.ok) {
          throw new Error(j.error || ("HTTP " + r.status));
        }
        return j;
      });
    });
  }
  function outcome(res) {
    var reasons = (res.reasons || []).join(", ");
    if (res.state === "passed") {
      show("Passed: you are confirmed at your laptop. Thank you.", "ok", "passed");
    } else if (res.state === "failed") {
      show("This check did not pass (" + reasons + "). If you think this is wrong, tell your manager or IT; " +
        "a check is never used as the only evidence.", "bad", "failed");
    } else if (res.state === "verifying") {
      show("Confirmed. Waiting for your laptop's agent to report…", "", "verifying");
      setTimeout(poll, 2000);
    }
  }
  function poll() {
    fetch(base + "/status", {credentials: "same-origin"}).then(function (r) { return r.json(); }).then(outcome, function () {
      setTimeout(poll, 5000);
    });
  }

  function enrol() {
    return post("/begin").then(function (o) {
      var p = o.publicKey;
      p.challenge = fromB64u(p.challenge);
      p.user.id = fromB64u(p.user.id);
      (p.excludeCredentials || []).forEach(function (c) { c.id = fromB64u(c.id); });
      return navigator.credentials.create({publicKey: p});
    }).then(function (cred) {
      var r = cred.response;
      return post("/finish", {
        id: cred.id, rawId: toB64u(cred.rawId), type: cred.type,
        authenticatorAttachment: cred.authenticatorAttachment || "",
        clientExtensionResults: cred.getClientExtensionResults(),
        response: {
          clientDataJSON: toB64u(r.clientDataJSON), attestationObject: toB64u(r.attestationObject),
          transports: r.getTransports ? r.getTransports() : []
        }
      });
    }).then(function () {
      show("Registered. This laptop can now answer presence checks.", "ok", "enrolled");
      button.hidden = true;
    });
  }

  function check() {
    return post("/begin").then(function (o) {
      var p = o.publicKey;
      p.challenge = fromB64u(p.challenge);
      (p.allowCredentials || []).forEach(function (c) { c.id = fromB64u(c.id); });
      return navigator.credentials.get({publicKey: p});
    }).then(function (cred) {
      var r = cred.response;
      return post("/finish", {
        id: cred.id, rawId: toB64u(cred.rawId), type: cred.type,
        authenticatorAttachment: cred.authenticatorAttachment || "",
        clientExtensionResults: cred.getClientExtensionResults(),
        response: {
          clientDataJSON: toB64u(r.clientDataJSON), authenticatorData: toB64u(r.authenticatorData),
          signature: toB64u(r.signature), userHandle: r.userHandle ? toB64u(r.userHandle) : ""
        }
      });
    }).then(function (res) {
      button.hidden = true;
      outcome(res);
    });
  }

  if (kind === "check" && body.dataset.state === "verifying") {
    poll();
  }
  button.addEventListener("click", function () {
    button.disabled = true;
    show("Follow your laptop's prompt…", "");
    (kind === "enrol" ? enrol() : check()).catch(function (e) {
      show("That did not work: " + e.message, "bad");
      button.disabled = false;
    });
  });
}());
