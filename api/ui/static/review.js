// The reviewers' page: the duplicate-case queue (GET /v1/cases), both claimants' faces
// (GET /v1/claimants/{id}/face, when thumbnails are stored) and the decision
// (POST /v1/cases/{id}/decision).
"use strict";

(async () => {
  const PAGE = "review";
  const t = I18n.t;
  const $ = (id) => document.getElementById(id);
  const el = Api.el;
  const state = { key: null, offset: 0, total: 0, urls: [] };

  function showSignedIn(key) {
    state.key = key;
    $("sign-in").classList.add("hidden");
    $("queue").classList.remove("hidden");
    $("who").classList.remove("hidden");
    state.offset = 0;
    load().then(() => $("status").focus());
    checkFmr();
  }

  // The live FMR estimate among enrolled claimants (biometric.gallery_fmr): a warning when it
  // lies above twice the claim with 95 % confidence.
  async function checkFmr() {
    const box = $("fmr-warning");
    try {
      const e = await Api.json(state.key, "/v1/gallery/fmr-estimate");
      box.classList.toggle("hidden", !e.exceeds);
      if (e.exceeds) {
        box.textContent = t("ui.review.fmr_warning", {
          ratio: Api.fmt(e.ratio, 2), low: e.ci[0].toExponential(1),
          claim: e.fmr_claimed, pairs: e.comparisons,
        });
      }
    } catch (err) {
      box.classList.add("hidden");  // the queue's own errors are shown by load()
    }
  }

  function showSignedOut() {
    state.key = null;
    releaseImages();
    $("cases").replaceChildren();
    $("queue").classList.add("hidden");
    $("who").classList.add("hidden");
    $("sign-in").classList.remove("hidden");
    $("api-key").focus();
  }

  $("sign-out").addEventListener("click", () => {
    Api.clearKey(PAGE);
    showSignedOut();
  });

  function releaseImages() {
    state.urls.forEach((u) => URL.revokeObjectURL(u));
    state.urls = [];
  }

  function filters() {
    return {
      status: $("status").value,
      citizen: $("citizen").value.trim(),
      limit: Number($("page-size").value),
    };
  }

  async function load(message = "") {
    const f = filters();
    const status = $("queue-status");
    status.classList.remove("error");
    if (f.citizen && !/^\d{12}$/.test(f.citizen)) {
      status.textContent = t("ui.citizen_id_invalid");
      status.classList.add("error");
      return;
    }
    const params = new URLSearchParams({ status: f.status, limit: f.limit, offset: state.offset });
    if (f.citizen) params.set("citizen_id", f.citizen);
    status.textContent = t("ui.review.loading");
    let page;
    try {
      page = await Api.json(state.key, "/v1/cases?" + params);
    } catch (err) {
      status.textContent = err.message;
      status.classList.add("error");
      if (err.status === 401 || err.status === 403) {
        Api.clearKey(PAGE);
        showSignedOut();
        $("sign-in-error").textContent = err.message;
      }
      return;
    }
    if (!page.items.length && state.offset > 0 && page.total > 0) {
      state.offset = Math.max(0, state.offset - f.limit);
      return load(message);
    }
    state.total = page.total;
    releaseImages();
    $("cases").replaceChildren(...page.items.map(caseCard));
    $("count").textContent = "(" + page.total + ")";
    const from = page.total ? page.offset + 1 : 0;
    const to = page.offset + page.items.length;
    $("page-info").textContent = t("ui.review.page_info", { from, to, total: page.total });
    $("prev").disabled = page.offset === 0;
    $("next").disabled = to >= page.total;
    status.textContent = message || (page.total ? "" : t("ui.review.no_cases"));
  }

  // A face is fetched only when the case list says one is stored: a missing one is no request
  // (and no "not found" refusal in the audit trail).
  function face(citizenId, enrolledAt, role, stored) {
    const figure = el("figure", { class: "face", "data-citizen": citizenId });
    const holder = el("div", { class: "no-photo", role: "img", "aria-label": t("ui.review.photo_loading") }, "…");
    figure.append(
      holder,
      el("figcaption", {}, el("b", { text: citizenId }), el("br"), t("ui.review.enrolled", { role, date: Api.date(enrolledAt) }))
    );
    const missing = () => {
      holder.textContent = t("ui.review.photo_not_stored");
      holder.setAttribute("aria-label", t("ui.review.photo_not_stored_for", { id: citizenId }));
    };
    if (!stored) {
      missing();
      return figure;
    }
    Api.call(state.key, "/v1/claimants/" + citizenId + "/face")
      .then((r) => r.blob())
      .then((blob) => {
        const url = URL.createObjectURL(blob);
        state.urls.push(url);
        const img = el("img", { src: url, alt: t("ui.review.face_of", { id: citizenId }) });
        holder.replaceWith(img);
      })
      .catch(missing);
    return figure;
  }

  function caseCard(c) {
    const noteId = "note-" + c.id;
    const stored = new Set(c.faces_stored || []);
    const originKey = "ui.review.origin_" + c.origin;
    const origin = I18n.has(originKey) ? t(originKey) : c.origin;
    const card = el(
      "article",
      { class: "pair case", "data-case-id": c.id, "data-status": c.status, "aria-label": t("ui.review.case", { id: c.id }) },
      face(c.citizen_id, c.claimant_enrolled_at, t("ui.review.newer"), stored.has(c.citizen_id)),
      el(
        "div",
        { class: "score", "data-raw": c.score },
        c.display_score === null ? Api.fmt(c.score, 3) : String(c.display_score),
        el("small", { text: t("ui.review.similarity") }),
        el("small", { text: t("ui.review.threshold_display") }),
        el("small", { class: "raw", text: t("ui.review.raw_score", { score: Api.fmt(c.score, 3), threshold: Api.fmt(c.threshold, 3) }) })
      ),
      face(c.candidate_citizen_id, c.candidate_enrolled_at, t("ui.review.already_enrolled"), stored.has(c.candidate_citizen_id))
    );
    const side = el(
      "div",
      { class: "case-actions" },
      el("div", {}, el("b", { text: t("ui.review.case", { id: c.id }) + " " }),
        el("span", { class: "pill " + c.status, text: I18n.has("ui.review.pill_" + c.status) ? t("ui.review.pill_" + c.status) : c.status })),
      el("div", { class: "note", text: t("ui.review.opened", { date: Api.date(c.created_at), origin }) })
    );
    if (c.status === "open") {
      const form = el("form", { class: "decide" });
      form.append(
        el("label", { for: noteId, text: t("ui.review.note") }),
        el("textarea", { id: noteId, name: "note", maxlength: "2000", rows: "2" }),
        el(
          "div",
          { class: "row" },
          el("button", { type: "submit", class: "danger", value: "confirmed", "data-decision": "confirmed",
            text: t("ui.review.confirm") }),
          el("button", { type: "submit", value: "dismissed", "data-decision": "dismissed",
            text: t("ui.review.dismiss") })
        ),
        el("p", { class: "status-line error", role: "alert" })
      );
      form.addEventListener("submit", (event) => decide(event, c, form));
      side.append(form);
    } else {
      side.append(
        el("div", { class: "note", text: t("ui.review.decided", { date: Api.date(c.decided_at), reviewer: c.reviewer || "–" }) }),
        c.note ? el("div", { text: t("ui.review.note_value", { note: c.note }) }) : null
      );
    }
    card.append(side);
    return card;
  }

  async function decide(event, c, form) {
    event.preventDefault();
    // Enter in the note field submits no decision: the reviewer must press a button.
    const button = event.submitter;
    if (!button || !button.dataset.decision) return;
    const decision = button.dataset.decision;
    const note = form.elements.note.value.trim() || null;
    const error = form.querySelector(".error");
    form.querySelectorAll("button").forEach((b) => (b.disabled = true));
    try {
      await Api.json(state.key, "/v1/cases/" + c.id + "/decision", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ decision, note }),
      });
    } catch (err) {
      error.textContent = err.message;
      form.querySelectorAll("button").forEach((b) => (b.disabled = false));
      return;
    }
    await load(t(decision === "confirmed" ? "ui.review.case_confirmed" : "ui.review.case_dismissed", { id: c.id }));
    $("queue-status").focus();
  }

  $("filters").addEventListener("submit", (event) => {
    event.preventDefault();
    state.offset = 0;
    load();
  });
  $("prev").addEventListener("click", () => {
    state.offset = Math.max(0, state.offset - filters().limit);
    load();
  });
  $("next").addEventListener("click", () => {
    state.offset += filters().limit;
    load();
  });

  await I18n.init($("lang"));
  I18n.onChange(() => {
    if (state.key) load();
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
