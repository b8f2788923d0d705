// Plaza widget SDK, protocol v1 — a plain ES module for extension authors. Types: sdk.d.ts.
// Served from the widget origin at /w/sdk.js. Spec: docs/embed-protocol.md.
//
//   import { connect } from "/w/sdk.js";
//   const plaza = await connect();            // handshake with the host page
//   const data = await plaza.api("entitlements/reports");  // Plaza's API with the delegated token
//   plaza.resize(320); plaza.toast("Saved"); plaza.navigate("/orders/42"); plaza.upgrade("reports");
//
// The delegated token is kept in this module's memory only: never in storage, a cookie, a URL or
// the console. Messages are accepted only from the parent window at the origin the server wrote into
// <meta name="plaza-parent-origin">, and after the handshake only on the private MessageChannel port.

export const PROTOCOL_VERSIONS = Object.freeze([1]);
export const VERSION = "1.0.0";

const DEFAULT_TIMEOUT_MS = 5000;
const HANDSHAKE_TIMEOUT_MS = 10000;
const TOKEN_MARGIN_MS = 10000;
const THEME_TYPES = new Set([
  "color", "dimension", "fontFamily", "fontWeight", "duration", "number", "shadow", "cubicBezier", "string",
]);
const CSS_VAR_RE = /^--plaza-[a-z0-9]+(?:-[a-z0-9]+)*$/;
const TOKEN_NAME_RE = /^[a-z0-9]+(?:[.-][a-z0-9]+)*$/;

/** An error the host or Plaza answered with (`code` is stable, `message` is for people). */
export class PlazaError extends Error {
  constructor(code, message, { status = null, param = null } = {}) {
    super(message || code);
    this.name = "PlazaError";
    this.code = code;
    this.status = status;
    this.param = param;
  }
}

function randomId() {
  if (globalThis.crypto?.randomUUID) return crypto.randomUUID();
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function envelope(type, payload = {}, replyTo = null) {
  return { plaza: 1, id: randomId(), type, payload, replyTo };
}

function isEnvelope(data) {
  return (
    data !== null && typeof data === "object" && data.plaza === 1 &&
    typeof data.id === "string" && data.id.length > 0 && data.id.length <= 100 &&
    typeof data.type === "string" && data.type.length <= 64 &&
    (data.payload === undefined || (data.payload !== null && typeof data.payload === "object")) &&
    (data.replyTo === undefined || data.replyTo === null || typeof data.replyTo === "string")
  );
}

function meta(name) {
  const el = document.querySelector(`meta[name="${name}"]`);
  return el ? el.getAttribute("content") || "" : "";
}

function exactOrigin(value) {
  // Only a serialized origin ("https://host.example:8443"), nothing with a path, "*" or "null".
  try {
    const url = new URL(value);
    return (url.protocol === "https:" || url.protocol === "http:") && url.origin === value ? value : null;
  } catch {
    return null;
  }
}

/** Same rules as the host's loader: typed values, no characters that could leave a declaration. */
export function isSafeThemeValue(value) {
  if (typeof value !== "string" || value.length === 0 || value.length > 200) return false;
  if (/[;{}<>\\\u0000-\u001f\u007f`]/.test(value)) return false;
  if (/\/\*|\*\/|!\s*important|@/i.test(value)) return false;
  if (/(?:url|image|image-set|cross-fade|element|expression|attr|env|var|src)\s*\(/i.test(value)) return false;
  for (const q of ['"', "'"]) if ((value.split(q).length - 1) % 2) return false;
  return true;
}

export function themeVariable(name) {
  if (typeof name !== "string" || name.length > 100) return null;
  if (CSS_VAR_RE.test(name)) return name;
  if (TOKEN_NAME_RE.test(name)) return "--plaza-" + name.replace(/\./g, "-");
  return null;
}

const appliedVariables = new Set();

/** Apply typed pairs to `--plaza-*` custom properties of <html> (style.setProperty only); variables
 *  set by an earlier theme and missing from this one are removed. Returns the variables applied. */
export function applyTheme(theme, root = document.documentElement) {
  const next = new Map();
  if (theme && typeof theme === "object" && !Array.isArray(theme)) {
    for (const [name, entry] of Object.entries(theme)) {
      const variable = themeVariable(name);
      if (!variable || !entry || typeof entry !== "object") continue;
      const type = entry.type ?? entry.$type;
      let value = entry.value ?? entry.$value;
      if (typeof value === "number" && Number.isFinite(value)) value = String(value);
      if (THEME_TYPES.has(type) && isSafeThemeValue(value)) next.set(variable, value);
    }
  }
  for (const variable of appliedVariables) if (!next.has(variable)) root.style.removeProperty(variable);
  appliedVariables.clear();
  for (const [variable, value] of next) {
    root.style.setProperty(variable, value);
    appliedVariables.add(variable);
  }
  return [...next.keys()];
}

const FOCUSABLE =
  'a[href], area[href], button:not([disabled]), input:not([disabled]):not([type="hidden"]), ' +
  'select:not([disabled]), textarea:not([disabled]), iframe, summary, [contenteditable=""], ' +
  '[contenteditable="true"], [tabindex]';

function focusables() {
  return Array.from(document.querySelectorAll(FOCUSABLE)).filter((el) => {
    if (el.tabIndex < 0 || el.hasAttribute("disabled") || el.closest("[inert]")) return false;
    const style = getComputedStyle(el);
    return style.visibility !== "hidden" && style.display !== "none" && el.getClientRects().length > 0;
  });
}

class Client {
  constructor(port, init, options) {
    this.port = port;
    this.version = init.version;
    this.installationId = init.installation_id;
    this.extensionId = init.extension_id;
    this.slot = init.slot;
    this.title = typeof init.title === "string" ? init.title : "";
    this.hostOrigin = init.host_origin;
    this.context = init.context && typeof init.context === "object" ? init.context : {};
    this.theme = init.theme && typeof init.theme === "object" ? init.theme : {};
    this.apiBase = exactOrigin(meta("plaza-api-base")) || exactOrigin(init.api_base) || null;
    this.options = options;
    this.pending = new Map();
    this.listeners = new Map();
    this.tokenState = null; // {token, expiresAt}; memory only
    this.tokenRequest = null;
    this.closed = false;
    port.onmessage = (event) => this.onMessage(event.data);
  }

  onMessage(msg) {
    if (!isEnvelope(msg) || this.closed) return;
    const payload = msg.payload || {};
    switch (msg.type) {
      case "response": {
        const entry = this.pending.get(msg.replyTo);
        if (!entry) return;
        this.pending.delete(msg.replyTo);
        clearTimeout(entry.timer);
        if (payload.ok === true) entry.resolve(payload.result ?? {});
        else {
          const error = payload.error || {};
          entry.reject(new PlazaError(String(error.code || "host_error"), String(error.message || "the host refused")));
        }
        return;
      }
      case "token":
        this.storeToken(payload);
        return this.fire("token", { expires_at: payload.expires_at ?? null, expires_in: payload.expires_in ?? null });
      case "theme":
        this.theme = payload.theme && typeof payload.theme === "object" ? payload.theme : {};
        if (this.options.applyTheme !== false) applyTheme(this.theme);
        return this.fire("theme", this.theme);
      case "context":
        this.context = payload.context && typeof payload.context === "object" ? payload.context : {};
        return this.fire("context", this.context);
      case "init":
        return; // only ever on the window, once
      default:
        this.port.postMessage(envelope("response", { ok: false, error: { code: "unsupported", message: "unsupported message type" } }, msg.id));
    }
  }

  fire(type, detail) {
    for (const fn of this.listeners.get(type) || []) {
      try {
        fn(detail);
      } catch (err) {
        setTimeout(() => {
          throw err;
        });
      }
    }
  }

  /** Listen for `token` (metadata only, not the token), `theme` and `context` pushes. Returns an unsubscribe function. */
  on(type, fn) {
    if (!this.listeners.has(type)) this.listeners.set(type, new Set());
    this.listeners.get(type).add(fn);
    return () => this.listeners.get(type)?.delete(fn);
  }

  /** Send a request to the host; resolves with its result or rejects with a PlazaError (`timeout` after `timeout` ms). */
  request(type, payload = {}, { timeout = DEFAULT_TIMEOUT_MS } = {}) {
    if (this.closed) return Promise.reject(new PlazaError("closed", "the connection is closed"));
    const msg = envelope(type, payload);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(msg.id);
        reject(new PlazaError("timeout", `the host did not answer ${type} in time`));
      }, timeout);
      this.pending.set(msg.id, { resolve, reject, timer });
      this.port.postMessage(msg);
    });
  }

  storeToken(payload) {
    if (!payload || typeof payload.token !== "string" || !payload.token) return;
    const expiresIn = Number.isFinite(payload.expires_in) ? payload.expires_in : 60;
    this.tokenState = { token: payload.token, expiresAt: Date.now() + expiresIn * 1000 };
  }

  /** The delegated token (a JWT string), from memory while it has more than 10 s to live. */
  async getToken({ force = false } = {}) {
    const t = this.tokenState;
    if (!force && t && t.expiresAt - Date.now() > TOKEN_MARGIN_MS) return t.token;
    if (!this.tokenRequest) {
      this.tokenRequest = this.request("token.request", force ? { force: true } : {}, { timeout: 15000 })
        .then((result) => {
          this.storeToken(result);
          if (!this.tokenState) throw new PlazaError("token_unavailable", "the host sent no token");
          return this.tokenState.token;
        })
        .finally(() => {
          this.tokenRequest = null;
        });
    }
    return this.tokenRequest;
  }

  /** Call Plaza's API (`path` under /api/v1/) with the delegated token. Resolves with the JSON body;
   *  an error answer rejects with a PlazaError carrying `status`, `code` and `param`
   *  (`entitlement_required` → pass `err.param` to upgrade()). */
  async api(path, { method = "GET", body, json, headers = {}, signal } = {}) {
    if (!this.apiBase) throw new PlazaError("no_api_base", "the widget document does not name Plaza's API");
    if (typeof path !== "string" || /^[a-z][a-z0-9+.-]*:|^\/\/|\\/i.test(path)) {
      throw new PlazaError("invalid_path", "path must be relative to /api/v1/");
    }
    const url = `${this.apiBase}/api/v1/${path.replace(/^\/+/, "").replace(/^api\/v1\//, "")}`;
    const send = async (force) => {
      const token = await this.getToken({ force });
      const init = {
        method,
        credentials: "omit",
        cache: "no-store",
        referrerPolicy: "no-referrer",
        signal,
        headers: { Accept: "application/json", ...headers, Authorization: `Bearer ${token}` },
      };
      if (json !== undefined) {
        init.body = JSON.stringify(json);
        init.headers["Content-Type"] = "application/json";
      } else if (body !== undefined) init.body = body;
      return fetch(url, init);
    };
    let res = await send(false);
    if (res.status === 401) res = await send(true); // expired between checks: one fresh token, once
    const text = await res.text();
    let data = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch {
      data = text;
    }
    if (!res.ok) {
      const error = (data && data.error) || {};
      throw new PlazaError(String(error.code || `http_${res.status}`), String(error.message || res.statusText), {
        status: res.status,
        param: error.param ?? null,
      });
    }
    return data;
  }

  /** Ask for `height` CSS pixels; the host clamps it to the slot's limits and answers the height it set. */
  async resize(height) {
    const result = await this.request("resize", { height: Math.ceil(Number(height)) });
    return result.height;
  }

  /** Ask the host to go to one of its routes ("/orders/42"); rejects with `route_not_allowed`. */
  navigate(route) {
    return this.request("navigate", { route: String(route) });
  }

  /** Show a short text notice in the host page (plain text, at most 200 characters). */
  toast(message, { kind = "info" } = {}) {
    return this.request("toast", { message: String(message), kind });
  }

  /** Ask the host to show its upgrade prompt for `feature` (the widget never renders billing). */
  upgrade(feature) {
    return this.request("upgrade", { feature: String(feature) });
  }

  /** Tell the host the widget has rendered. connect() sends this unless `ready: false`. */
  ready() {
    return this.request("ready", {});
  }

  /** Hand keyboard focus back to the host page (after or before the widget). */
  focusExit(direction = "forward") {
    return this.request("focus.exit", { direction: direction === "backward" ? "backward" : "forward" });
  }

  startAutoResize() {
    if (this.resizeObserver || typeof ResizeObserver === "undefined") return;
    let last = -1;
    let scheduled = false;
    const measure = () => {
      scheduled = false;
      const body = document.body;
      const margin = parseFloat(getComputedStyle(body).marginTop) + parseFloat(getComputedStyle(body).marginBottom);
      const height = Math.ceil(body.getBoundingClientRect().height + margin);
      if (height !== last) {
        last = height;
        this.resize(height).catch(() => {});
      }
    };
    this.resizeObserver = new ResizeObserver(() => {
      if (!scheduled) {
        scheduled = true;
        requestAnimationFrame(measure);
      }
    });
    this.resizeObserver.observe(document.body);
  }

  startFocusExit() {
    this.onKeydown = (event) => {
      if (event.key !== "Tab" || event.defaultPrevented || event.altKey || event.ctrlKey || event.metaKey) return;
      const items = focusables();
      const active = document.activeElement;
      const first = items[0];
      const last = items[items.length - 1];
      // From <body> (nothing focused yet) Tab goes to the first element as usual.
      const atEnd = !items.length || active === last;
      const atStart = !items.length || active === first;
      if (!event.shiftKey && atEnd) {
        event.preventDefault();
        this.focusExit("forward").catch(() => {});
      } else if (event.shiftKey && atStart) {
        event.preventDefault();
        this.focusExit("backward").catch(() => {});
      }
    };
    document.addEventListener("keydown", this.onKeydown, true);
  }

  close() {
    this.closed = true;
    this.tokenState = null;
    this.resizeObserver?.disconnect();
    if (this.onKeydown) document.removeEventListener("keydown", this.onKeydown, true);
    for (const { reject, timer } of this.pending.values()) {
      clearTimeout(timer);
      reject(new PlazaError("closed", "the connection is closed"));
    }
    this.pending.clear();
    this.port.close();
  }
}

let client = null;
let connecting = null;

/**
 * Handshake with the host page: post `hello` (supported versions) to the parent at the exact
 * origin named by <meta name="plaza-parent-origin">, wait for `init` with a MessageChannel port
 * from that same window and origin, then talk on the port only.
 * Options: `timeout` (ms, default 10000), `applyTheme` (default true), `autoResize` (default
 * false: observe <body> and ask for its height), `focusExit` (default true: Tab past the last
 * focusable element leaves the widget), `ready` (default true: send `ready`).
 */
export function connect(options = {}) {
  if (client) return Promise.resolve(client);
  if (!connecting) {
    connecting = handshake(options).then(
      (c) => {
        client = c;
        return c;
      },
      (err) => {
        connecting = null;
        throw err;
      },
    );
  }
  return connecting;
}

function handshake(options) {
  const parentOrigin = exactOrigin(meta("plaza-parent-origin"));
  if (!parentOrigin) return Promise.reject(new PlazaError("no_parent_origin", "the widget document names no parent origin"));
  if (window.parent === window) return Promise.reject(new PlazaError("not_embedded", "the widget is not inside a host page"));
  const parent = window.parent;
  const hello = envelope("hello", {
    versions: [...PROTOCOL_VERSIONS],
    installation_id: meta("plaza-installation") || null,
    sdk: `plaza-sdk/${VERSION}`,
  });
  return new Promise((resolve, reject) => {
    let retry = null;
    const finish = () => {
      clearTimeout(deadline);
      clearTimeout(retry);
      window.removeEventListener("message", onMessage);
    };
    const onMessage = (event) => {
      // Exactly our parent window, at exactly the origin the server wrote into the page.
      if (event.source !== parent || event.origin !== parentOrigin) return;
      const data = event.data;
      if (!isEnvelope(data) || data.replyTo !== hello.id) return;
      if (data.type === "response" && data.payload?.ok === false) {
        finish();
        const error = data.payload.error || {};
        reject(new PlazaError(String(error.code || "handshake_refused"), String(error.message || "the host refused")));
        return;
      }
      const init = data.payload || {};
      if (data.type !== "init" || event.ports.length !== 1 || !PROTOCOL_VERSIONS.includes(init.version)) return;
      finish();
      const c = new Client(event.ports[0], init, options);
      if (options.applyTheme !== false) applyTheme(c.theme);
      if (options.focusExit !== false) c.startFocusExit();
      if (options.autoResize) c.startAutoResize();
      if (options.ready !== false) c.ready().catch(() => {});
      resolve(c);
    };
    const deadline = setTimeout(() => {
      finish();
      reject(new PlazaError("timeout", "the host page did not answer the handshake"));
    }, options.timeout ?? HANDSHAKE_TIMEOUT_MS);
    window.addEventListener("message", onMessage);
    // The same hello (same id) may be repeated while unanswered; the host answers one id once.
    let delay = 500;
    const send = () => {
      parent.postMessage(hello, parentOrigin);
      retry = setTimeout(send, (delay = Math.min(delay * 2, 4000)));
    };
    send();
  });
}

function connected() {
  if (!client) throw new PlazaError("not_connected", "call connect() first");
  return client;
}

/** Module-level shortcuts for the connected client. */
export const getToken = async (opts) => connected().getToken(opts);
export const api = async (path, opts) => connected().api(path, opts);
export const resize = async (height) => connected().resize(height);
export const navigate = async (route) => connected().navigate(route);
export const toast = async (message, opts) => connected().toast(message, opts);
export const upgrade = async (feature) => connected().upgrade(feature);
export const focusExit = async (direction) => connected().focusExit(direction);
export const on = (type, fn) => connected().on(type, fn);
