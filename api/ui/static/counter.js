// The counter page: live capture (camera or file) + chip photo -> POST /v1/verify.
"use strict";

(() => {
  const PAGE = "counter";
  const $ = (id) => document.getElementById(id);
  const state = { key: null, live: null, chip: null, stream: null };
  const LABELS = {
    match: ["MATCH", "The person is the holder of the card."],
    no_match: ["NO MATCH", "The live photo does not match the chip photo. Check identity by other means."],
    retake: ["RETAKE", "The photos cannot be compared yet. See why below."],
    refused: ["REFUSED", "Do not accept this card. See why below."],
  };

  // -- sign in / out ----------------------------------------------------------------------

  function showSignedIn(key) {
    state.key = key;
    $("sign-in").classList.add("hidden");
    $("verify-form").classList.remove("hidden");
    $("who").classList.remove("hidden");
    $("camera-start").focus();
  }

  function showSignedOut() {
    state.key = null;
    stopCamera();
    $("verify-form").classList.add("hidden");
    $("result").classList.add("hidden");
    $("who").classList.add("hidden");
    $("sign-in").classList.remove("hidden");
    $("api-key").focus();
  }

  $("sign-out").addEventListener("click", () => {
    Api.clearKey(PAGE);
    showSignedOut();
  });

  // -- images -----------------------------------------------------------------------------

  async function drawPreview(canvas, blob) {
    const bitmap = await createImageBitmap(blob);
    canvas.width = bitmap.width;
    canvas.height = bitmap.height;
    canvas.getContext("2d").drawImage(bitmap, 0, 0);
    canvas.classList.remove("hidden");
    bitmap.close();
  }

  async function setImage(which, blob, description) {
    state[which] = blob;
    const status = $(which + "-status");
    try {
      await drawPreview($(which + "-preview"), blob);
      status.textContent = description;
    } catch (_) {
      // Formats the browser cannot show (e.g. JPEG 2000) are still sent to the server.
      $(which + "-preview").classList.add("hidden");
      status.textContent = description + " (no preview in this browser)";
    }
  }

  async function startCamera() {
    const status = $("live-status");
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      status.textContent = "No camera access here (the page needs https or localhost). Choose a file.";
      return;
    }
    try {
      state.stream = await navigator.mediaDevices.getUserMedia({
        video: { width: { ideal: 1280 }, height: { ideal: 720 }, facingMode: "user" },
        audio: false,
      });
    } catch (err) {
      status.textContent = "The camera could not be started (" + err.name + "). Choose a file instead.";
      return;
    }
    const video = $("video");
    video.srcObject = state.stream;
    video.classList.remove("hidden");
    $("live-preview").classList.add("hidden");
    await video.play().catch(() => {});
    $("capture").disabled = false;
    $("camera-start").textContent = "Stop camera";
    status.textContent = "Camera on. Ask the person to look at the camera, then press Capture.";
    $("capture").focus();
  }

  function stopCamera() {
    if (state.stream) state.stream.getTracks().forEach((t) => t.stop());
    state.stream = null;
    $("video").srcObject = null;
    $("video").classList.add("hidden");
    $("capture").disabled = true;
    $("camera-start").textContent = "Start camera";
  }

  $("camera-start").addEventListener("click", () => (state.stream ? stopCamera() : startCamera()));

  $("capture").addEventListener("click", () => {
    const video = $("video");
    if (!video.videoWidth) {
      $("live-status").textContent = "The camera is not ready yet; try again.";
      return;
    }
    const canvas = document.createElement("canvas");
    canvas.width = video.videoWidth;
    canvas.height = video.videoHeight;
    canvas.getContext("2d").drawImage(video, 0, 0);
    canvas.toBlob(
      async (blob) => {
        stopCamera();
        await setImage("live", blob, "Live photo captured (" + canvas.width + "×" + canvas.height + ").");
        $("chip-file").focus();
      },
      "image/jpeg",
      0.92
    );
  });

  $("live-file").addEventListener("change", (e) => {
    const file = e.target.files[0];
    if (!file) return;
    stopCamera();
    setImage("live", file, "Live photo: " + file.name);
  });

  $("chip-file").addEventListener("change", (e) => {
    const file = e.target.files[0];
    if (file) setImage("chip", file, "Chip photo: " + file.name);
  });

  // -- verify -----------------------------------------------------------------------------

  $("verify-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const status = $("verify-status");
    status.classList.remove("error");
    const chipFiles = ChipFiles.selected();
    if (!state.live || (!state.chip && !chipFiles)) {
      status.textContent = !state.live ? "Take or choose the live photo first." : "Choose the chip photo first.";
      status.classList.add("error");
      return;
    }
    const citizen = $("citizen-id").value.trim();
    if (citizen && !/^\d{12}$/.test(citizen)) {
      status.textContent = "The citizen ID must be exactly 12 digits (or left empty).";
      status.classList.add("error");
      $("citizen-id").focus();
      return;
    }
    const form = new FormData();
    form.append("live", state.live, "live.jpg");
    if (chipFiles) ChipFiles.append(form);
    else form.append("chip", state.chip, state.chip.name || "chip.jpg");
    if (citizen) form.append("citizen_id", citizen);
    $("verify").disabled = true;
    status.textContent = "Verifying…";
    try {
      const body = await Api.json(state.key, "/v1/verify", { method: "POST", body: form });
      status.textContent = "";
      await showResult(body);
    } catch (err) {
      status.textContent = err.message;
      status.classList.add("error");
      if (err.status === 401) {
        Api.clearKey(PAGE);
        showSignedOut();
        $("sign-in-error").textContent = err.message;
      }
    } finally {
      $("verify").disabled = false;
    }
  });

  async function drawFaces(canvas, blob, info) {
    const ctx = canvas.getContext("2d");
    let bitmap = null;
    try {
      bitmap = await createImageBitmap(blob);
    } catch (_) {
      bitmap = null;
    }
    canvas.width = info.width;
    canvas.height = info.height;
    if (bitmap) {
      ctx.drawImage(bitmap, 0, 0, info.width, info.height);
      bitmap.close();
    } else {
      ctx.fillStyle = "#444";
      ctx.fillRect(0, 0, info.width, info.height);
    }
    const unit = Math.max(2, Math.round(Math.max(info.width, info.height) / 200));
    info.faces.forEach((face, i) => {
      const [x1, y1, x2, y2] = face.box;
      const subject = i === info.subject;
      ctx.lineWidth = subject ? unit * 1.5 : unit;
      ctx.strokeStyle = subject ? "#2ecc71" : "#f4a261";
      ctx.setLineDash(subject ? [] : [unit * 3, unit * 2]);
      ctx.strokeRect(x1, y1, x2 - x1, y2 - y1);
    });
  }

  function qualityRows(table, info) {
    table.replaceChildren();
    const q = info.quality;
    const rows = [["Faces found", String(info.faces.length)]];
    if (q) {
      rows.push(["Quality", Api.fmt(q.score, 0) + " / 100"]);
      rows.push(["Sharpness", Api.fmt(q.sharpness, 0)]);
      rows.push(["Brightness", Api.fmt(q.brightness, 0)]);
      rows.push(["Head turn (yaw)", Api.fmt(q.yaw_deg, 0) + "°"]);
      rows.push(["Eye distance", Api.fmt(q.inter_eye_px, 0) + " px"]);
    }
    for (const [k, v] of rows) {
      table.append(Api.el("tr", {}, Api.el("th", { scope: "row", text: k }), Api.el("td", { text: v })));
    }
  }

  async function showResult(body) {
    const [label, sub] = LABELS[body.decision] || [body.decision, ""];
    const decision = $("decision");
    decision.className = "decision " + body.decision;
    decision.replaceChildren(label, Api.el("small", { text: sub }));
    decision.dataset.decision = body.decision;
    const reasons = $("reasons");
    reasons.replaceChildren(...body.reasons.map((r) => Api.el("li", { text: r.message })));
    $("score").textContent = Api.fmt(body.score, 3);
    $("threshold").textContent = Api.fmt(body.threshold, 3) + " (false-match rate " + body.fmr + ")";
    const meter = $("meter");
    if (body.score === null) {
      meter.classList.add("hidden");
      $("score-note").textContent = "No similarity: a face is missing or unusable.";
    } else {
      meter.classList.remove("hidden");
      const pct = (v) => Math.max(0, Math.min(100, v * 100)) + "%";
      $("meter-fill").style.width = pct(body.score);
      $("meter-mark").style.left = pct(body.threshold);
      $("score-note").textContent =
        body.score >= body.threshold
          ? "The similarity is at or above the threshold."
          : "The similarity is below the threshold.";
    }
    await drawFaces($("live-result"), state.live, body.faces.live);
    await drawFaces($("chip-result"), ChipFiles.portrait(body) || state.chip, body.faces.chip);
    ChipFiles.show(body);
    qualityRows($("live-quality"), body.faces.live);
    qualityRows($("chip-quality"), body.faces.chip);
    const liveness = body.liveness;
    $("liveness-card").classList.toggle("hidden", !liveness);
    if (liveness) {
      const t = $("liveness");
      t.replaceChildren();
      const rows = [
        ["Result", liveness.is_live ? "looks live" : "possible photo or screen (spoof)"],
        ["Score", Api.fmt(liveness.score, 3) + " (threshold " + Api.fmt(liveness.threshold, 3) + ")"],
        ["Policy", liveness.policy],
      ];
      for (const [k, v] of rows) {
        t.append(Api.el("tr", {}, Api.el("th", { scope: "row", text: k }), Api.el("td", { text: v })));
      }
    }
    $("request-id").textContent = "Request " + body.request_id;
    const result = $("result");
    result.classList.remove("hidden");
    result.focus();
    result.scrollIntoView({ block: "start" });
  }

  Api.signIn({
    page: PAGE,
    form: $("sign-in-form"),
    input: $("api-key"),
    errorEl: $("sign-in-error"),
    onSignedIn: showSignedIn,
    onSignedOut: showSignedOut,
  });
})();
