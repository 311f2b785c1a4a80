// Chip files on the counter page: EF.DG2 (+ EF.SOD) instead of a chip photo, and the chip's
// signature check (passive authentication) shown beside the chip photo. Used by counter.js.
"use strict";

const ChipFiles = (() => {
  const $ = (id) => document.getElementById(id);
  const files = { dg2: null, sod: null };
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
      const key = "ui.chip.status_" + auth.status;
      pill.className = "pill " + (STYLE[auth.status] || "chip-failed");
      pill.textContent = I18n.has(key) ? I18n.t(key) : auth.status;
      pill.dataset.status = auth.status;
      // auth.message is the check's technical detail, in English (biometric.chip).
      const issuer = auth.issuer ? " " + I18n.t("ui.chip.issuer", { issuer: auth.issuer }) : "";
      detail.textContent = auth.message + "." + issuer + " " + I18n.t("ui.chip.policy", { policy: auth.policy });
    },
  };
})();
