// The console's one script: WebAuthn needs it. A page's form[data-passkey] carries the
// ceremony's options (data-options, JSON from the server); on submit this asks the browser's
// passkey, puts its answer in the form's "credential" field as JSON, and posts the form.
"use strict";
(function () {
  var form = document.querySelector("form[data-passkey]");
  if (!form) { return; }
  var status = document.getElementById("passkey-status");
  function bytes(text) {
    var b64 = text.replace(/-/g, "+").replace(/_/g, "/");
    b64 += "====".slice((b64.length % 4) || 4);
    return Uint8Array.from(atob(b64), function (c) { return c.charCodeAt(0); }).buffer;
  }
  function text(buffer) {
    var s = "";
    new Uint8Array(buffer).forEach(function (b) { s += String.fromCharCode(b); });
    return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }
  function ids(list) {
    return (list || []).map(function (c) { return { type: c.type, id: bytes(c.id), transports: c.transports }; });
  }
  // the browser's answer as JSON, its binary fields in base64url (what the server parses)
  function answer(c, response) {
    response.clientDataJSON = text(c.response.clientDataJSON);
    return {
      id: c.id, rawId: text(c.rawId), type: c.type,
      authenticatorAttachment: c.authenticatorAttachment,
      clientExtensionResults: c.getClientExtensionResults(),
      response: response
    };
  }
  function create(o) {
    o.challenge = bytes(o.challenge);
    o.user.id = bytes(o.user.id);
    o.excludeCredentials = ids(o.excludeCredentials);
    return navigator.credentials.create({ publicKey: o }).then(function (c) {
      return answer(c, {
        attestationObject: text(c.response.attestationObject),
        transports: c.response.getTransports ? c.response.getTransports() : []
      });
    });
  }
  function get(o) {
    o.challenge = bytes(o.challenge);
    o.allowCredentials = ids(o.allowCredentials);
    return navigator.credentials.get({ publicKey: o }).then(function (c) {
      return answer(c, {
        authenticatorData: text(c.response.authenticatorData),
        signature: text(c.response.signature),
        userHandle: c.response.userHandle ? text(c.response.userHandle) : null
      });
    });
  }
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    if (!window.PublicKeyCredential) {
      status.textContent = "This browser has no passkeys (WebAuthn). Use a current browser.";
      return;
    }
    var options = JSON.parse(form.getAttribute("data-options"));
    var ask = form.getAttribute("data-passkey") === "create" ? create : get;
    status.textContent = "Waiting for your passkey...";
    ask(options).then(function (answer) {
      form.elements.credential.value = JSON.stringify(answer);
      form.submit();
    }, function (error) {
      status.textContent = "The passkey was not used (" + error.name + "). Try again.";
    });
  });
}());
