// Shared by the staff pages: the API key in sessionStorage (never in the URL), fetch with the
// key header, problem documents turned into readable messages.
"use strict";

const Api = (() => {
  const storeKey = (page) => "biometric.apiKey." + page;

  function getKey(page) {
    return sessionStorage.getItem(storeKey(page));
  }
  function setKey(page, key) {
    sessionStorage.setItem(storeKey(page), key);
  }
  function clearKey(page) {
    sessionStorage.removeItem(storeKey(page));
  }

  class ApiError extends Error {
    constructor(status, code, message, body) {
      super(message);
      this.status = status;
      this.code = code;
      this.body = body;
    }
  }

  async function call(key, path, options = {}) {
    const headers = new Headers(options.headers || {});
    headers.set("X-API-Key", key);
    const response = await fetch(path, { ...options, headers, cache: "no-store" });
    if (response.ok) return response;
    let body = null;
    try {
      body = await response.json();
    } catch (_) {
      body = null;
    }
    const code = body && body.type ? body.type.split("/").pop() : "http_" + response.status;
    let message = (body && body.detail) || response.statusText || "request failed";
    if (response.status === 401) message = "This API key was not accepted (unknown or revoked).";
    if (response.status === 403) message = "This API key may not use this page (wrong role).";
    if (body && body.request_id) message += " (request " + body.request_id + ")";
    throw new ApiError(response.status, code, message, body);
  }

  async function json(key, path, options = {}) {
    return (await call(key, path, options)).json();
  }

  // Sign-in form wiring: form, input, the signed-in area, the "signed in" label, sign-out.
  function signIn({ page, form, input, onSignedIn, onSignedOut, check, errorEl }) {
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const key = input.value.trim();
      errorEl.textContent = "";
      if (!key) {
        errorEl.textContent = "Enter your API key.";
        input.focus();
        return;
      }
      try {
        if (check) await check(key);
      } catch (err) {
        errorEl.textContent = err.message;
        input.focus();
        return;
      }
      setKey(page, key);
      input.value = "";
      onSignedIn(key);
    });
    const existing = getKey(page);
    if (existing) onSignedIn(existing);
    else onSignedOut();
  }

  function fmt(x, digits = 3) {
    return x === null || x === undefined ? "–" : Number(x).toFixed(digits);
  }

  function date(iso) {
    if (!iso) return "–";
    const d = new Date(iso);
    return isNaN(d) ? iso : d.toLocaleString();
  }

  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") node.className = v;
      else if (k === "text") node.textContent = v;
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v === true ? "" : v);
    }
    for (const child of children) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  return { getKey, setKey, clearKey, call, json, signIn, ApiError, fmt, date, el };
})();
