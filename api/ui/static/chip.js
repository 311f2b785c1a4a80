// Chip files on the counter page: EF.DG2 (+ EF.SOD) instead of a chip photo, and the chip's
// signature check (passive authentication) shown beside the chip photo. Used by counter.js.
"use strict";

const ChipFiles = (() => {
  const $ = (id) => document.getElementById(id);
  const files = { dg2: null, sod: null };
  const listeners = [];
  // Pill style per status; the text is the catalogue's ui.chip.status_<status>.
  const STYLE = { verified: "chip-ok", not_checked: "chip-unchecked" };

  function describe() {
    const parts = [];
    if (files.dg2) parts.push("EF.DG2: " + files.dg2.name);
    if (files.sod) parts.push("EF.SOD: " + files.sod.name);
    if (files.dg2 && !files.sod) parts.push(I18n.t("ui.chip.no_sod"));
    $("chip-files-status").textContent = parts.join(" · ");
  }

  for (const name of ["dg2", "sod"]) {
    $(name + "-file").addEventListener("change", (e) => {
      files[name] = e.target.files[0] || null;
      describe();
      listeners.forEach((f) => f(name));
    });
  }

  function clear() {
    for (const name of ["dg2", "sod"]) {
      files[name] = null;
      $(name + "-file").value = "";
    }
    describe();
  }

  // The issuer of the Document Signer (an RFC 4514 name) as staff read it: the issuing
  // country, named in the page's language, and the authority (O, else CN).
  function issuer(dn, country) {
    const parts = {};
    for (const m of (dn || "").matchAll(/(?:^|,)\s*([A-Za-z]+)=((?:\\.|[^,\\])*)/g)) {
      parts[m[1].toUpperCase()] = m[2].replace(/\\(.)/g, "$1");
    }
    const code = country || parts.C;
    let place = code || "";
    try {
      if (code) place = new Intl.DisplayNames([I18n.locale()], { type: "region" }).of(code) || code;
    } catch (_) {
      place = code;
    }
    const authority = parts.O || parts.CN || "";
    return [authority, place].filter(Boolean).join(", ");
  }

  // What was sent as the chip's portrait, for the result ("which chip source was used").
  function source() {
    if (!files.dg2) return null;
    return files.sod
      ? I18n.t("ui.chip.source_files", { dg2: files.dg2.name, sod: files.sod.name })
      : I18n.t("ui.chip.source_files_no_sod", { dg2: files.dg2.name });
  }

  return {
    onSelect: (f) => listeners.push(f),
    clear,
    source,
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
      const key = "ui.chip.status_" + auth.status;
      pill.className = "pill " + (STYLE[auth.status] || "chip-failed");
      pill.textContent = I18n.has(key) ? I18n.t(key) : auth.status;
      pill.dataset.status = auth.status;
      // The check's own message (auth.message, in English, for logs and tools) is not shown:
      // staff read the catalogue's explanation of the status, the issuer and the policy.
      const explain = "ui.chip.detail_" + auth.status;
      const parts = [I18n.has(explain) ? I18n.t(explain) : ""];
      const who = issuer(auth.issuer, auth.country);
      if (who) parts.push(I18n.t("ui.chip.issuer", { issuer: who }));
      const policyKey = "ui.policy." + auth.policy;
      parts.push(I18n.t("ui.chip.policy", { policy: I18n.has(policyKey) ? I18n.t(policyKey) : auth.policy }));
      detail.textContent = parts.filter(Boolean).join(" ");
    },
  };
})();
