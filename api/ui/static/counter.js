// The counter page: guided live capture (camera with POST /v1/capture-check, or a file) +
// chip photo -> POST /v1/verify. Every text comes from the catalogue (I18n.t).
"use strict";

(async () => {
  const PAGE = "counter";
  const $ = (id) => document.getElementById(id);
  const t = I18n.t;
  // live/chip: the images to send; liveSource/chipSource: how staff got them (shown with the
  // result, so a result always names the inputs it was computed from).
  const state = { key: null, live: null, chip: null, liveSource: null, chipSource: null,
                  stream: null, result: null, sent: null };
  // Guided capture: a preview frame this wide, this often; auto-capture after a countdown of
  // COUNTDOWN steps once a frame passes the live quality bounds.
  const CHECK_WIDTH = 480;
  const CHECK_EVERY_MS = 300;
  const COUNTDOWN = 3;
  const STEP_MS = 1000;
  const guide = { timer: null, busy: false, countdown: null, count: 0 };

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

  // The chip prepared on the server (POST /v1/chip, below): a promise of its handle, or null.
  let preparing = null;

  // A result belongs to the inputs it was computed from: any change of input removes it.
  function hideResult() {
    state.result = null;
    state.sent = null;
    $("result").classList.add("hidden");
  }

  function clearImage(which) {
    if (which === "chip") preparing = null; // its handle belongs to the chip removed
    state[which] = null;
    state[which + "Source"] = null;
    $(which + "-file").value = "";
    $(which + "-preview").classList.add("hidden");
    I18n.set($(which + "-status"), which === "live" ? "ui.counter.no_live" : "ui.counter.no_chip");
    hideResult();
  }

  // ``key``: the status line; ``source``: the catalogue key naming the image in the result.
  async function setImage(which, blob, key, params, source) {
    hideResult();
    state[which] = blob;
    state[which + "Source"] = { key: source, params };
    const status = $(which + "-status");
    I18n.set(status, key, params);
    try {
      await drawPreview($(which + "-preview"), blob);
    } catch (_) {
      // Formats the browser cannot show (e.g. JPEG 2000) are still sent to the server.
      $(which + "-preview").classList.add("hidden");
      status.textContent += " " + t("ui.counter.no_preview");
    }
  }

  async function startCamera() {
    const status = $("live-status");
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      I18n.set(status, "ui.counter.no_camera_api");
      return;
    }
    try {
      state.stream = await navigator.mediaDevices.getUserMedia({
        video: { width: { ideal: 1280 }, height: { ideal: 720 }, facingMode: "user" },
        audio: false,
      });
    } catch (err) {
      I18n.set(status, "ui.counter.camera_failed", { error: err.name });
      return;
    }
    const video = $("video");
    video.srcObject = state.stream;
    $("camera").classList.remove("hidden");
    $("live-preview").classList.add("hidden");
    await video.play().catch(() => {});
    $("capture").disabled = false;
    I18n.set($("camera-start"), "ui.counter.camera_stop");
    I18n.set(status, "ui.counter.camera_on");
    $("capture").focus();
    startGuide();
  }

  function stopCamera() {
    stopGuide();
    if (state.stream) state.stream.getTracks().forEach((track) => track.stop());
    state.stream = null;
    $("video").srcObject = null;
    $("camera").classList.add("hidden");
    $("capture").disabled = true;
    I18n.set($("camera-start"), "ui.counter.camera_start");
  }

  $("camera-start").addEventListener("click", () => (state.stream ? stopCamera() : startCamera()));

  function capture() {
    const video = $("video");
    if (!video.videoWidth) {
      I18n.set($("live-status"), "ui.counter.camera_not_ready");
      return;
    }
    const canvas = document.createElement("canvas");
    canvas.width = video.videoWidth;
    canvas.height = video.videoHeight;
    canvas.getContext("2d").drawImage(video, 0, 0);
    stopGuide();
    canvas.toBlob(
      async (blob) => {
        stopCamera();
        $("live-file").value = "";  // the capture replaces a file picked before
        await setImage("live", blob, "ui.counter.captured", { width: canvas.width, height: canvas.height },
          "ui.counter.source_camera");
        $("chip-file").focus();
      },
      "image/jpeg",
      0.92
    );
  }

  $("capture").addEventListener("click", capture);

  // -- guided capture -----------------------------------------------------------------------

  function showGuide(text, kind) {
    const el = $("guide");
    el.textContent = text;
    el.dataset.kind = kind;
  }

  function drawBoxes(check) {
    const video = $("video");
    const overlay = $("overlay");
    overlay.width = video.clientWidth;
    overlay.height = video.clientHeight;
    const ctx = overlay.getContext("2d");
    ctx.clearRect(0, 0, overlay.width, overlay.height);
    if (!check) return;
    const sx = overlay.width / check.width;
    const sy = overlay.height / check.height;
    check.faces.forEach((face, i) => {
      const [x1, y1, x2, y2] = face.box;
      const subject = i === check.subject;
      ctx.lineWidth = 3;
      ctx.strokeStyle = subject ? (check.ready ? "#2ecc71" : "#f4a261") : "#e63946";
      ctx.setLineDash(subject ? [] : [8, 6]);
      ctx.strokeRect(x1 * sx, y1 * sy, (x2 - x1) * sx, (y2 - y1) * sy);
    });
  }

  function cancelCountdown() {
    if (guide.countdown) clearTimeout(guide.countdown);
    guide.countdown = null;
  }

  function countdownStep() {
    if (guide.count <= 0) {
      guide.countdown = null;
      capture();
      return;
    }
    showGuide(t("guide.countdown", { n: guide.count }), "countdown");
    guide.count -= 1;
    guide.countdown = setTimeout(countdownStep, STEP_MS);
  }

  async function checkFrame() {
    const video = $("video");
    if (guide.busy || !state.stream || !video.videoWidth) return;
    guide.busy = true;
    try {
      const scale = Math.min(1, CHECK_WIDTH / video.videoWidth);
      const canvas = document.createElement("canvas");
      canvas.width = Math.round(video.videoWidth * scale);
      canvas.height = Math.round(video.videoHeight * scale);
      canvas.getContext("2d").drawImage(video, 0, 0, canvas.width, canvas.height);
      const blob = await new Promise((resolve) => canvas.toBlob(resolve, "image/jpeg", 0.8));
      const check = await Api.json(state.key, "/v1/capture-check?full_width=" + video.videoWidth, {
        method: "POST",
        headers: { "Content-Type": "image/jpeg" },
        body: blob,
      });
      if (!state.stream) return;
      drawBoxes(check);
      if (!check.ready) {
        cancelCountdown();
        showGuide(t("guide." + check.instruction), "instruction");
      } else if (!guide.countdown) {
        if ($("auto-capture").checked) {
          guide.count = COUNTDOWN;
          countdownStep();
        } else {
          showGuide(t("guide.good"), "good");
        }
      }
    } catch (err) {
      cancelCountdown();
      showGuide(t("guide.unavailable"), "instruction");
      if (err.status === 401) {
        Api.clearKey(PAGE);
        showSignedOut();
      }
    } finally {
      guide.busy = false;
    }
  }

  function startGuide() {
    stopGuide();
    showGuide(t("guide.checking"), "instruction");
    guide.timer = setInterval(checkFrame, CHECK_EVERY_MS);
  }

  function stopGuide() {
    if (guide.timer) clearInterval(guide.timer);
    guide.timer = null;
    cancelCountdown();
    drawBoxes(null);
  }

  $("live-file").addEventListener("change", (e) => {
    const file = e.target.files[0];
    if (!file) return;
    stopCamera();
    setImage("live", file, "ui.counter.live_from_file", { name: file.name }, "ui.counter.source_file");
  });

  // The chip is sent as soon as it is chosen (POST /v1/chip): the server reads, checks and
  // embeds it while the claimant is being captured, and the verification then sends only the
  // live image with the handle. A handle is used once: after each verification the chip is
  // prepared again. Any failure here falls back to sending the chip with the verification.

  function chipParts(form) {
    const chipFiles = ChipFiles.selected();
    if (chipFiles) ChipFiles.append(form);
    else if (state.chip) form.append("chip", state.chip, state.chip.name || "chip.jpg");
    else return false;
    return true;
  }

  function prepareChip() {
    const form = new FormData();
    if (!state.key || !chipParts(form)) {
      preparing = null;
      return;
    }
    preparing = Api.json(state.key, "/v1/chip", { method: "POST", body: form })
      .then((body) => body.chip_handle)
      .catch(() => null);
  }

  // One chip source at a time: a chip photo or the chip files, never one shown and the other
  // compared.
  $("chip-file").addEventListener("change", async (e) => {
    const file = e.target.files[0];
    if (!file) return;
    ChipFiles.clear();
    // setImage takes the new chip at once (before its first await): prepare that one now, so
    // a verification started meanwhile never uses the previous chip's handle.
    const shown = setImage("chip", file, "ui.counter.chip_from_file", { name: file.name }, "ui.chip.source_image");
    prepareChip();
    await shown;
  });
  ChipFiles.onSelect(() => {
    if (state.chip) clearImage("chip");
    hideResult();
    prepareChip();
  });
  $("live-clear").addEventListener("click", () => clearImage("live"));
  $("chip-clear").addEventListener("click", () => clearImage("chip"));
  $("chip-files-clear").addEventListener("click", () => {
    ChipFiles.clear();
    hideResult();
    preparing = null;
  });

  // -- verify -----------------------------------------------------------------------------

  $("verify-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    hideResult();  // a failed request must not leave the previous result on screen
    const status = $("verify-status");
    status.classList.remove("error");
    const chipFiles = ChipFiles.selected();
    if (!state.live || (!state.chip && !chipFiles)) {
      status.textContent = !state.live ? t("ui.counter.need_live") : t("ui.counter.need_chip");
      status.classList.add("error");
      return;
    }
    const citizen = $("citizen-id").value.trim();
    if (citizen && !/^\d{12}$/.test(citizen)) {
      status.textContent = t("ui.citizen_id_invalid");
      status.classList.add("error");
      $("citizen-id").focus();
      return;
    }
    const form = new FormData();
    form.append("live", state.live, "live.jpg");
    const handle = preparing && (await preparing);
    preparing = null; // used by this verification
    if (handle) form.append("chip_handle", handle);
    else chipParts(form);
    if (citizen) form.append("citizen_id", citizen);
    const sent = {
      live: state.live,
      liveSource: state.liveSource,
      chip: chipFiles ? null : state.chip,
      chipSource: chipFiles ? { text: ChipFiles.source() } : state.chipSource,
    };
    $("verify").disabled = true;
    status.textContent = t("ui.counter.verifying");
    try {
      let body;
      try {
        body = await Api.json(state.key, "/v1/verify", { method: "POST", body: form });
      } catch (err) {
        if (!handle || !String(err.code).startsWith("chip_handle")) throw err;
        form.delete("chip_handle"); // expired or unknown: send the chip itself
        chipParts(form);
        body = await Api.json(state.key, "/v1/verify", { method: "POST", body: form });
      }
      status.textContent = "";
      state.sent = sent;
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
      prepareChip(); // for the next verification of this chip (a retake)
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
    const rows = [[t("ui.counter.faces_found"), String(info.faces.length)]];
    if (q) {
      rows.push([t("ui.counter.quality"), Api.fmt(q.score, 0) + " / 100"]);
      rows.push([t("ui.counter.sharpness"), Api.fmt(q.sharpness, 0)]);
      rows.push([t("ui.counter.brightness"), Api.fmt(q.brightness, 0)]);
      rows.push([t("ui.counter.yaw"), Api.fmt(q.yaw_deg, 0) + "°"]);
      rows.push([t("ui.counter.eye_distance"), Api.fmt(q.inter_eye_px, 0) + " px"]);
    }
    for (const [k, v] of rows) {
      table.append(Api.el("tr", {}, Api.el("th", { scope: "row", text: k }), Api.el("td", { text: v })));
    }
  }

  // Reasons by code from the catalogue (so a language switch re-renders them too); the
  // server's message only for a code this page does not know yet.
  const reasonText = (r) => (I18n.has("reason." + r.code) ? t("reason." + r.code) : r.message);

  function sourceText(source) {
    if (!source) return "–";
    return source.text || t(source.key, source.params);
  }

  async function showResult(body) {
    state.result = body;
    const sent = state.sent;
    const label = t("decision." + body.decision);
    const sub = t("decision." + body.decision + ".detail");
    const decision = $("decision");
    // A face decision on a chip that was not verified is never the verified screen: amber,
    // with the banner saying so.
    const faceDecision = body.decision === "match" || body.decision === "no_match";
    const unverified = faceDecision && body.chip_trust !== "verified";
    decision.className = "decision " + body.decision + (unverified ? " unverified" : "");
    decision.replaceChildren(label, Api.el("small", { text: sub }));
    decision.dataset.decision = body.decision;
    decision.dataset.chipTrust = body.chip_trust;
    $("chip-banner").classList.toggle("hidden", !unverified);
    const reasons = $("reasons");
    reasons.replaceChildren(...body.reasons.map((r) => Api.el("li", { text: reasonText(r) })));
    $("used-live").textContent = t("ui.counter.used_live", { source: sourceText(sent.liveSource) });
    $("used-chip").textContent = t("ui.counter.used_chip", { source: sourceText(sent.chipSource) });
    const shown = body.display_score;
    $("score").textContent = shown === null || shown === undefined ? "–" : String(shown);
    $("threshold").textContent = t("ui.counter.threshold_display");
    $("raw-score").textContent = body.score === null ? "" : t("ui.counter.raw_score", {
      score: Api.fmt(body.score, 3),
      threshold: Api.fmt(body.threshold, 3),
      fmr: Api.fmt(body.fmr, null),
    });
    const meter = $("meter");
    if (shown === null || shown === undefined) {
      meter.classList.add("hidden");
      $("score-note").textContent = t("ui.counter.no_similarity");
    } else {
      meter.classList.remove("hidden");
      $("meter-fill").style.width = Math.max(0, Math.min(100, shown)) + "%";
      $("meter-mark").style.left = "50%";
      const points = Api.fmt(50 / -Math.log10(body.fmr), 0);
      $("score-note").textContent =
        (body.score >= body.threshold
          ? t("ui.counter.above_threshold")
          : t("ui.counter.below_threshold")) + " " + t("ui.counter.display_note", { points });
    }
    await drawFaces($("live-result"), sent.live, body.faces.live);
    await drawFaces($("chip-result"), ChipFiles.portrait(body) || sent.chip, body.faces.chip);
    ChipFiles.show(body);
    qualityRows($("live-quality"), body.faces.live);
    qualityRows($("chip-quality"), body.faces.chip);
    const liveness = body.liveness;
    $("liveness-card").classList.toggle("hidden", !liveness);
    if (liveness) {
      const table = $("liveness");
      table.replaceChildren();
      const rows = [
        [t("ui.counter.liveness_result"), liveness.is_live ? t("ui.counter.looks_live") : t("ui.counter.possible_spoof")],
        [t("ui.counter.score"), Api.fmt(liveness.score, 3) + " (" + t("ui.counter.threshold") + " " + Api.fmt(liveness.threshold, 3) + ")"],
        [t("ui.counter.policy"), I18n.has("ui.policy." + liveness.policy) ? t("ui.policy." + liveness.policy) : liveness.policy],
      ];
      for (const [k, v] of rows) {
        table.append(Api.el("tr", {}, Api.el("th", { scope: "row", text: k }), Api.el("td", { text: v })));
      }
    }
    $("request-id").textContent = t("ui.counter.request_id", { id: body.request_id });
    const result = $("result");
    result.classList.remove("hidden");
    result.focus();
    result.scrollIntoView({ block: "start" });
  }

  await I18n.init($("lang"));
  I18n.onChange(() => {
    if (state.result && state.sent && !$("result").classList.contains("hidden")) showResult(state.result);
  });

  Api.signIn({
    page: PAGE,
    form: $("sign-in-form"),
    input: $("api-key"),
    errorEl: $("sign-in-error"),
    check: (key) => Api.json(key, "/v1/session/" + PAGE),
    onSignedIn: showSignedIn,
    onSignedOut: showSignedOut,
  });
})();
