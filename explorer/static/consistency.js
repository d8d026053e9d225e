// Checks in the browser that the log only grew since a checkpoint the user
// saved: both checkpoints signed by a log key of the served trusted root,
// and an RFC 9162 consistency proof from the earlier size to the current
// one. Everything it relies on is listed; any failure says which.
"use strict";
(function () {
  const form = document.getElementById("consistency-form");
  const out = document.getElementById("consistency");
  const enc = new TextEncoder();
  const b64 = (s) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
  const hex = (buf) => Array.from(new Uint8Array(buf), (b) => b.toString(16).padStart(2, "0")).join("");
  const unhex = (s) => Uint8Array.from(s.match(/../g) || [], (h) => parseInt(h, 16));
  const sha256 = (bytes) => crypto.subtle.digest("SHA-256", bytes);
  const concat = (...parts) => {
    const o = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) { o.set(p, at); at += p.length; }
    return o;
  };
  const node = async (l, r) => new Uint8Array(await sha256(concat(Uint8Array.of(1), l, r)));
  const curves = { PKIX_ECDSA_P256_SHA_256: ["P-256", 32], PKIX_ECDSA_P384_SHA_384: ["P-384", 48], PKIX_ECDSA_P521_SHA_512: ["P-521", 66] };

  function derToRaw(der, size) {
    let i = der[1] & 0x80 ? 2 + (der[1] & 0x7f) : 2;
    if (der[0] !== 0x30) throw new Error("a checkpoint signature is not DER");
    const ints = [];
    for (let k = 0; k < 2; k++) {
      if (der[i] !== 0x02) throw new Error("a checkpoint signature is not DER");
      let v = der.slice(i + 2, i + 2 + der[i + 1]);
      while (v.length > size && v[0] === 0) v = v.slice(1);
      if (v.length > size) throw new Error("a checkpoint signature does not fit the key's curve");
      ints.push(concat(new Uint8Array(size - v.length), v));
      i += 2 + der[i + 1];
    }
    return concat(ints[0], ints[1]);
  }

  // A signed checkpoint checked with whichever Rekor log key of the trusted
  // root its key hint names.
  async function checkpoint(note, keys) {
    note = note.replace(/\r\n/g, "\n").trim() + "\n";
    const cut = note.indexOf("\n\n");
    if (cut < 0) throw new Error("that is not a signed checkpoint (no blank line before a signature)");
    const text = note.slice(0, cut + 1);
    const [origin, size, root] = text.split("\n");
    if (!/^[0-9]+$/.test(size)) throw new Error("the checkpoint's second line is not a tree size");
    const blob = b64(note.slice(cut + 2).split("\n")[0].split(" ").pop());
    const hint = hex(blob.slice(0, 4));
    const k = keys.find((k) => k.id.startsWith(hint));
    if (!k) throw new Error("no log key of the trusted root has the checkpoint's key hint " + hint);
    const ok = await crypto.subtle.verify({ name: "ECDSA", hash: "SHA-256" }, k.key, derToRaw(blob.slice(4), k.size), enc.encode(text));
    if (!ok) throw new Error("the checkpoint of size " + size + " is not signed by the log key");
    return { origin, size: Number(size), root: b64(root) };
  }

  // RFC 9162 §2.1.4.2.
  async function consistent(first, second, firstRoot, secondRoot, path) {
    if (first > second) throw new Error("the earlier checkpoint is larger than the current one: the log shrank");
    if (first === second) {
      if (path.length !== 0 || hex(firstRoot) !== hex(secondRoot)) throw new Error("two checkpoints of one size with different roots: the log was rewritten");
      return;
    }
    if (first === 0) return;
    if (path.length === 0) throw new Error("the consistency proof is empty");
    if ((first & (first - 1)) === 0) path = [firstRoot, ...path];
    let fn = first - 1, sn = second - 1;
    while (fn % 2 === 1) { fn = Math.floor(fn / 2); sn = Math.floor(sn / 2); }
    let fr = path[0], sr = path[0];
    for (const c of path.slice(1)) {
      if (sn === 0) throw new Error("the consistency proof is too long");
      if (fn % 2 === 1 || fn === sn) {
        fr = await node(c, fr); sr = await node(c, sr);
        if (fn % 2 === 0) { while (fn % 2 === 0 && fn !== 0) { fn = Math.floor(fn / 2); sn = Math.floor(sn / 2); } }
      } else {
        sr = await node(sr, c);
      }
      fn = Math.floor(fn / 2); sn = Math.floor(sn / 2);
    }
    if (sn !== 0) throw new Error("the consistency proof is too short");
    if (hex(fr) !== hex(firstRoot)) throw new Error("the proof does not lead to the earlier root: what was logged then has changed");
    if (hex(sr) !== hex(secondRoot)) throw new Error("the proof does not lead to the current root");
  }

  async function check(earlierText) {
    const steps = [];
    const tr = await (await fetch("/api/v1/trust/trusted_root.json")).json();
    const keys = [];
    for (const t of tr.tlogs || []) {
      const curve = curves[t.publicKey.keyDetails];
      if (!curve || (t.baseUrl || "").includes("/tiles/rekor-v2/")) continue;
      const spki = b64(t.publicKey.rawBytes);
      keys.push({ id: hex(await sha256(spki)), size: curve[1],
        key: await crypto.subtle.importKey("spki", spki, { name: "ECDSA", namedCurve: curve[0] }, false, ["verify"]) });
    }
    const earlier = await checkpoint(earlierText, keys);
    steps.push("earlier checkpoint (" + earlier.size + " entries) signed by the log key");
    const info = await (await fetch("/api/v1/log")).json();
    const current = await checkpoint(info.signedTreeHead, keys);
    steps.push("current checkpoint (" + current.size + " entries) signed by the log key");
    if (earlier.origin !== current.origin) throw new Error("the checkpoints are of different trees (" + earlier.origin + ", " + current.origin + "): a key rotation since? check the earlier tree's own checkpoint");
    let path = [];
    if (earlier.size > 0 && earlier.size < current.size) {
      const r = await fetch("/api/v1/log/proof?firstSize=" + earlier.size + "&lastSize=" + current.size);
      if (!r.ok) throw new Error("the log gave no consistency proof (HTTP " + r.status + ")");
      path = (await r.json()).hashes.map(unhex);
    }
    await consistent(earlier.size, current.size, earlier.root, current.root, path);
    steps.push("the tree of " + earlier.size + " entries is a prefix of today's " + current.size);
    return steps;
  }

  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    out.dataset.verified = "pending";
    out.className = "";
    out.textContent = "Checking…";
    check(document.getElementById("earlier").value).then((steps) => {
      out.dataset.verified = "true";
      out.className = "ok";
      out.textContent = "Consistent: " + steps.join("; ") + ".";
    }, (err) => {
      out.dataset.verified = "false";
      out.className = "failed";
      out.textContent = "NOT CONSISTENT: " + err.message;
    });
  });
  out.textContent = "Paste a checkpoint and press Check.";
})();
