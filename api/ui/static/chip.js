// Chip files on the counter page: EF.DG2 (+ EF.SOD) instead of a chip photo, and the chip's
// signature check (passive authentication) shown beside the chip photo. Used by counter.js.
"use strict";

const ChipFiles = (() => {
  const $ = (id) => document.getElementById(id);
  const files = { dg2: null, sod: null };
  const STATUS = {
    verified: ["chip-ok", "Chip signature verified"],
    not_checked: ["chip-unchecked", "Chip signature not checked"],
    hash_mismatch: ["chip-failed", "Chip data altered (hash mismatch)"],
    bad_signature: ["chip-failed", "Chip signature invalid"],
    untrusted_signer: ["chip-failed", "Chip signer not trusted"],
    expired: ["chip-failed", "Chip signer certificate expired"],
  };

  function describe() {
    const parts = [];
    if (files.dg2) parts.push("EF.DG2: " + files.dg2.name);
    if (files.sod) parts.push("EF.SOD: " + files.sod.name);
    if (files.dg2 && !files.sod) parts.push("no EF.SOD: the signature cannot be checked");
    $("chip-files-status").textContent = parts.join(" · ");
  }

  for (const name of ["dg2", "sod"]) {
    $(name + "-file").addEventListener("change", (e) => {
      files[name] = e.target.files[0] || null;
      describe();
    });
  }

  return {
    // The chip files to send, or null when the chip photo is used instead.
    selected: () => (files.dg2 ? { ...files } : null),

    append(form) {
      form.append("dg2", files.dg2, files.dg2.name || "EF.DG2");
      if (files.sod) form.append("sod", files.sod, files.sod.name || "EF.SOD");
    },

    // The portrait inside the DG2 that was sent: the server says where it lies.
    portrait(body) {
      const img = body.chip_image;
      if (!img || !files.dg2) return null;
      const type = img.data_type === "jpeg" ? "image/jpeg" : "image/jp2";
      return files.dg2.slice(img.image_offset, img.image_offset + img.image_bytes, type);
    },

    show(body) {
      const pill = $("chip-auth");
      const detail = $("chip-auth-detail");
      const auth = body.chip_auth;
      pill.classList.toggle("hidden", !auth);
      detail.classList.toggle("hidden", !auth);
      if (!auth) return;
      const [cls, text] = STATUS[auth.status] || ["chip-failed", auth.status];
      pill.className = "pill " + cls;
      pill.textContent = text;
      pill.dataset.status = auth.status;
      const issuer = auth.issuer ? " Issuer: " + auth.issuer + "." : "";
      detail.textContent = auth.message + "." + issuer + " Policy: " + auth.policy + ".";
    },
  };
})();
