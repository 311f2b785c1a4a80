// Shared by the staff pages: the texts in the chosen language (served from the gettext
// catalogue at /ui/i18n), the API key in sessionStorage (never in the URL), fetch with the key
// and language headers, problem documents turned into readable messages.
"use strict";

const I18n = (() => {
  const STORE = "biometric.locale";
  let messages = {};
  let locale = null;
  const listeners = [];

  // t("guide.countdown", { n: 3 }): the message with its {placeholders} filled in; the key
  // itself when the catalogue lacks it (a test keeps every key the pages use in both languages).
  function t(key, params = {}) {
    let text = Object.prototype.hasOwnProperty.call(messages, key) ? messages[key] : key;
    for (const [name, value] of Object.entries(params)) text = text.split("{" + name + "}").join(String(value));
    return text;
  }

  // A text that follows the language switch: the key and its values stay on the node.
  function set(node, key, params = {}) {
    node.dataset.i18n = key;
    node.dataset.i18nParams = JSON.stringify(params);
    node.textContent = t(key, params);
  }

  function has(key) {
    return Object.prototype.hasOwnProperty.call(messages, key);
  }

  function apply(root = document) {
    root.querySelectorAll("[data-i18n]").forEach((node) => {
      node.textContent = t(node.dataset.i18n, node.dataset.i18nParams ? JSON.parse(node.dataset.i18nParams) : {});
    });
    root.querySelectorAll("[data-i18n-aria-label]").forEach((node) =>
      node.setAttribute("aria-label", t(node.dataset.i18nAriaLabel))
    );
    root.querySelectorAll("[data-i18n-placeholder]").forEach((node) =>
      node.setAttribute("placeholder", t(node.dataset.i18nPlaceholder))
    );
    document.documentElement.lang = locale;
  }

  async function load(wanted) {
    const query = wanted ? "?locale=" + encodeURIComponent(wanted) : "";
    const response = await fetch("/ui/i18n" + query, { cache: "no-store" });
    const body = await response.json();
    messages = body.messages;
    locale = body.locale;
    apply();
    listeners.forEach((listener) => listener(locale));
    return body;
  }

  // The language: the one chosen before in this browser, else the service's default
  // (BIOMETRIC_LOCALE); the <select> switches it at once and remembers the choice.
  async function init(select) {
    await load(localStorage.getItem(STORE));
    if (select) {
      select.value = locale;
      select.addEventListener("change", async () => {
        localStorage.setItem(STORE, select.value);
        await load(select.value);
      });
    }
  }

  return { t, set, has, init, load, apply, onChange: (f) => listeners.push(f), locale: () => locale };
})();

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
    if (I18n.locale()) headers.set("Accept-Language", I18n.locale());
    const response = await fetch(path, { ...options, headers, cache: "no-store" });
    if (response.ok) return response;
    let body = null;
    try {
      body = await response.json();
    } catch (_) {
      body = null;
    }
    const code = body && body.type ? body.type.split("/").pop() : "http_" + response.status;
    let message = (body && body.detail) || response.statusText || I18n.t("ui.request_failed");
    if (response.status === 401) message = I18n.t("ui.key_refused");
    if (response.status === 403) message = I18n.t("ui.key_wrong_role");
    if (body && body.request_id) message += " (" + I18n.t("ui.request", { id: body.request_id }) + ")";
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
        errorEl.textContent = I18n.t("ui.enter_key");
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

  // Numbers in the page's language (Vietnamese: decimal comma); ``digits`` null: up to three
  // significant digits (a false-match rate such as 0,0001).
  function fmt(x, digits = 3) {
    if (x === null || x === undefined) return "–";
    const options = digits === null
      ? { maximumSignificantDigits: 3 }
      : { minimumFractionDigits: digits, maximumFractionDigits: digits };
    return new Intl.NumberFormat(I18n.locale() || undefined, options).format(Number(x));
  }

  function date(iso) {
    if (!iso) return "–";
    const d = new Date(iso);
    return isNaN(d) ? iso : d.toLocaleString(I18n.locale() || undefined);
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
