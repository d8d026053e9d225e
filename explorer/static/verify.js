// Verifies the entry on this page in the browser: the log key from the
// instance's trusted root (its SHA-256 must be the entry's log ID), the
// checkpoint's signature by that key (its origin naming the UUID's tree),
// the inclusion proof from the entry's own bytes (whose leaf hash is the
// UUID) to the checkpoint's root. The body shown is then the verified
// bytes. Each check is listed; any failure says which, loudly. It is a
// check against the key this server publishes: the trusted root's SHA-256
// is shown to compare with the one pinned out of band.
"use strict";
(function () {
  const out = document.getElementById("verification");
  let data;
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

  // An ASN.1 DER ECDSA signature as WebCrypto's r||s (size bytes each).
  function derToRaw(der, size) {
    let i = 2;
    if (der[0] !== 0x30) throw new Error("the checkpoint signature is not DER");
    if (der[1] & 0x80) i = 2 + (der[1] & 0x7f);
    const ints = [];
    for (let k = 0; k < 2; k++) {
      if (der[i] !== 0x02) throw new Error("the checkpoint signature is not DER");
      const len = der[i + 1];
      let v = der.slice(i + 2, i + 2 + len);
      while (v.length > size && v[0] === 0) v = v.slice(1);
      if (v.length > size) throw new Error("the checkpoint signature does not fit the key's curve");
      ints.push(concat(new Uint8Array(size - v.length), v));
      i += 2 + len;
    }
    return concat(ints[0], ints[1]);
  }

  // RFC 9162 §2.1.3.2: the root an inclusion proof leads to.
  async function rootFrom(leafHash, index, size, path) {
    if (!Number.isSafeInteger(index) || !Number.isSafeInteger(size) || index < 0 || index >= size) throw new Error("the leaf index is outside the tree");
    if (path.some((p) => p.length !== 32)) throw new Error("a proof hash is not 32 bytes");
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

  const curves = {
    PKIX_ECDSA_P256_SHA_256: ["P-256", 32],
    PKIX_ECDSA_P384_SHA_384: ["P-384", 48],
    PKIX_ECDSA_P521_SHA_512: ["P-521", 66],
  };

  async function verify() {
    data = JSON.parse(document.getElementById("proof").textContent);
    const resp = await fetch("/api/v1/trust/trusted_root.json");
    if (!resp.ok) throw new Error("the trusted root could not be read (HTTP " + resp.status + ")");
    const raw = new Uint8Array(await resp.arrayBuffer());
    step("trusted root SHA-256 " + hex(await sha256(raw)));
    const tr = JSON.parse(new TextDecoder().decode(raw));
    const wantID = btoa(String.fromCharCode(...unhex(data.logID)));
    const tlog = (tr.tlogs || []).find((t) => t.logId && t.logId.keyId === wantID);
    if (!tlog) throw new Error("the trusted root lists no log with ID " + data.logID);
    const spki = b64(tlog.publicKey.rawBytes);
    if (hex(await sha256(spki)) !== data.logID) throw new Error("the trusted root's key does not hash to the log ID");
    step("log key " + data.logID.slice(0, 16) + "… found in it");
    const curve = curves[tlog.publicKey.keyDetails];
    if (!curve) throw new Error("the log key is " + tlog.publicKey.keyDetails + ", which this page cannot check");
    // Signet signs checkpoints over SHA-256 whatever the curve (log/note).
    const key = await crypto.subtle.importKey("spki", spki, { name: "ECDSA", namedCurve: curve[0] }, false, ["verify"]);

    const cut = data.checkpoint.indexOf("\n\n");
    if (cut < 0) throw new Error("the checkpoint has no signature");
    const text = data.checkpoint.slice(0, cut + 1);
    const [origin, size, root] = text.split("\n");
    const sigLine = data.checkpoint.slice(cut + 2).split("\n")[0];
    const blob = b64(sigLine.split(" ").pop());
    const ok = await crypto.subtle.verify({ name: "ECDSA", hash: "SHA-256" }, key, derToRaw(blob.slice(4), curve[1]), enc.encode(text));
    if (!ok) throw new Error("the checkpoint's signature does not verify with the log key");
    step("checkpoint signed by the log key (" + origin + ", " + size + (size === "1" ? " entry)" : " entries)"));
    // An 80-hex UUID names its tree: the signed origin must name it too.
    if (data.uuid.length === 80) {
      const tree = BigInt("0x" + data.uuid.slice(0, 16)).toString();
      if (!origin.endsWith(" - " + tree)) throw new Error("the checkpoint is for " + origin + ", not tree " + tree + " the UUID names");
    }
    if (Number(size) !== data.treeSize || hex(b64(root)) !== data.rootHash) {
      throw new Error("the checkpoint is not the tree the proof is for");
    }

    const body = b64(data.body);
    const leaf = await sha256(concat(Uint8Array.of(0), body));
    if (hex(leaf) !== data.uuid.slice(-64)) throw new Error("the entry's bytes do not hash to its UUID");
    const got = await rootFrom(leaf, data.logIndex, data.treeSize, data.hashes.map(unhex));
    if (got !== data.rootHash) throw new Error("the entry is not in the tree: its inclusion proof leads to " + got.slice(0, 16) + "…, not the checkpoint's root");
    step("entry included at index " + data.logIndex + " of the signed tree");
    // What the page shows as the body is now the verified bytes.
    const shown = document.getElementById("body");
    if (shown) shown.textContent = JSON.stringify(JSON.parse(new TextDecoder().decode(body)), null, 2);
  }

  verify().then(() => {
    out.dataset.verified = "true";
    out.className = "ok";
    out.textContent = "Verified against the log key this server publishes: " + done.join("; ") + ".";
  }, (err) => {
    out.dataset.verified = "false";
    out.className = "failed";
    out.textContent = "DOES NOT VERIFY: " + err.message + (done.length ? " (checked before: " + done.join("; ") + ")" : "");
  });
})();
