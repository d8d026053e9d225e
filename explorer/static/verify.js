// Verifies the entry on this page in the browser: the log key from the
// instance's trusted root (its SHA-256 must be the entry's log ID), the
// checkpoint's signature by that key, the inclusion proof from the entry's
// own bytes to the checkpoint's root. Each check is listed; any failure
// says which, loudly.
"use strict";
(function () {
  const out = document.getElementById("verification");
  const data = JSON.parse(document.getElementById("proof").textContent);
  const enc = new TextEncoder();
  const b64 = (s) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
  const hex = (buf) => Array.from(new Uint8Array(buf), (b) => b.toString(16).padStart(2, "0")).join("");
  const unhex = (s) => Uint8Array.from(s.match(/../g) || [], (h) => parseInt(h, 16));
  const sha256 = (bytes) => crypto.subtle.digest("SHA-256", bytes);
  const concat = (...parts) => {
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) { out.set(p, at); at += p.length; }
    return out;
  };
  const done = [];
  const step = (what) => done.push(what);

  // An ASN.1 DER ECDSA signature as WebCrypto's r||s (32 bytes each).
  function derToRaw(der) {
    let i = 2;
    if (der[0] !== 0x30) throw new Error("the checkpoint signature is not DER");
    if (der[1] & 0x80) i = 2 + (der[1] & 0x7f);
    const ints = [];
    for (let k = 0; k < 2; k++) {
      if (der[i] !== 0x02) throw new Error("the checkpoint signature is not DER");
      const len = der[i + 1];
      let v = der.slice(i + 2, i + 2 + len);
      while (v.length > 32 && v[0] === 0) v = v.slice(1);
      if (v.length > 32) throw new Error("the checkpoint signature is not P-256");
      ints.push(concat(new Uint8Array(32 - v.length), v));
      i += 2 + len;
    }
    return concat(ints[0], ints[1]);
  }

  // RFC 9162 §2.1.3.2: the root an inclusion proof leads to.
  async function rootFrom(leafHash, index, size, path) {
    if (index >= size) throw new Error("the leaf index is outside the tree");
    let fn = index, sn = size - 1, r = new Uint8Array(leafHash);
    for (const p of path) {
      if (sn === 0) throw new Error("the proof is longer than the tree is deep");
      if (fn % 2 === 1 || fn === sn) {
        r = new Uint8Array(await sha256(concat(Uint8Array.of(1), p, r)));
        if (fn % 2 === 0) {
          while (fn % 2 === 0 && fn !== 0) { fn = Math.floor(fn / 2); sn = Math.floor(sn / 2); }
        }
      } else {
        r = new Uint8Array(await sha256(concat(Uint8Array.of(1), r, p)));
      }
      fn = Math.floor(fn / 2); sn = Math.floor(sn / 2);
    }
    if (sn !== 0) throw new Error("the proof is shorter than the tree is deep");
    return hex(r);
  }

  async function verify() {
    const resp = await fetch("/api/v1/trust/trusted_root.json");
    if (!resp.ok) throw new Error("the trusted root could not be read (HTTP " + resp.status + ")");
    const tr = await resp.json();
    const wantID = btoa(String.fromCharCode(...unhex(data.logID)));
    const tlog = (tr.tlogs || []).find((t) => t.logId && t.logId.keyId === wantID);
    if (!tlog) throw new Error("the trusted root lists no log with ID " + data.logID);
    const spki = b64(tlog.publicKey.rawBytes);
    if (hex(await sha256(spki)) !== data.logID) throw new Error("the trusted root's key does not hash to the log ID");
    step("log key " + data.logID.slice(0, 16) + "… found in the trusted root");
    const key = await crypto.subtle.importKey("spki", spki, { name: "ECDSA", namedCurve: "P-256" }, false, ["verify"]);

    const cut = data.checkpoint.indexOf("\n\n");
    if (cut < 0) throw new Error("the checkpoint has no signature");
    const text = data.checkpoint.slice(0, cut + 1);
    const [origin, size, root] = text.split("\n");
    const sigLine = data.checkpoint.slice(cut + 2).split("\n")[0];
    const blob = b64(sigLine.split(" ").pop());
    const ok = await crypto.subtle.verify({ name: "ECDSA", hash: "SHA-256" }, key, derToRaw(blob.slice(4)), enc.encode(text));
    if (!ok) throw new Error("the checkpoint's signature does not verify with the log key");
    step("checkpoint signed by the log key (" + origin + ", " + size + " entries)");
    if (Number(size) !== data.treeSize || hex(b64(root)) !== data.rootHash) {
      throw new Error("the checkpoint is not the tree the proof is for");
    }

    const leaf = await sha256(concat(Uint8Array.of(0), b64(data.body)));
    const got = await rootFrom(leaf, data.logIndex, data.treeSize, data.hashes.map(unhex));
    if (got !== data.rootHash) throw new Error("the entry is not in the tree: its inclusion proof leads to " + got.slice(0, 16) + "…, not the checkpoint's root");
    step("entry included at index " + data.logIndex + " of the signed tree");
  }

  verify().then(() => {
    out.dataset.verified = "true";
    out.className = "ok";
    out.textContent = "Verified: " + done.join("; ") + ".";
  }, (err) => {
    out.dataset.verified = "false";
    out.className = "failed";
    out.textContent = "DOES NOT VERIFY: " + err.message + (done.length ? " (checked before: " + done.join("; ") + ")" : "");
  });
})();
