// Plaza embed loader, protocol v1 — a plain ES module, no build step. Types: embed.d.ts.
// Spec: docs/embed-protocol.md. The host page imports this file from Plaza and calls mount();
// every <div data-plaza-slot="…"> gets one sandboxed iframe per widget Plaza returns for the slot.
//
// Security properties kept here (see the protocol document for the reasons):
// - a widget is accepted only when event.source is that iframe's window AND event.origin equals the
//   frame's origin exactly; replies use that origin as targetOrigin, never "*";
// - after the handshake everything travels on a private MessageChannel port;
// - tokens live in memory only (no storage, cookie, URL or console);
// - theme values are typed name/value pairs applied with style.setProperty, never raw CSS;
// - toasts and prompts are rendered with textContent, never HTML.

export const PROTOCOL_VERSIONS = Object.freeze([1]);
export const VERSION = "1.0.0";

const THEME_TYPES = new Set([
  "color", "dimension", "fontFamily", "fontWeight", "duration", "number", "shadow", "cubicBezier", "string",
]);
const CSS_VAR_RE = /^--plaza-[a-z0-9]+(?:-[a-z0-9]+)*$/;
const TOKEN_NAME_RE = /^[a-z0-9]+(?:[.-][a-z0-9]+)*$/;
const FEATURE_RE = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$/;
const ROUTE_RE = /^\/(?!\/)[A-Za-z0-9\-._~!$&'()*+,=:@%/?#]*$/;
const MAX_TOAST = 200;
const MAX_CONTEXT_BYTES = 16384;
const HEIGHT_LIMIT = 10000;
const TOKEN_TIMEOUT_MS = 10000;
// The only sandbox tokens and permissions-policy features a widget iframe may ever get, whatever
// Plaza answers: never top navigation, modals or popups escaping the sandbox.
const SANDBOX_TOKENS = new Set(["allow-scripts", "allow-same-origin", "allow-forms", "allow-popups"]);
const ALLOW_FEATURES = new Set(["clipboard-write", "fullscreen"]);

function sandboxValue(value) {
  return String(value ?? "").split(/\s+/).filter((t) => SANDBOX_TOKENS.has(t)).join(" ");
}

function allowValue(value) {
  return String(value ?? "").split(";").map((f) => f.trim()).filter((f) => ALLOW_FEATURES.has(f)).join("; ");
}
const REFRESH_MARGIN_S = 30;

/** A value a theme may carry: no characters that could close a declaration, open a block or markup,
 *  no comments, escapes, functions that fetch (url, image-set, …) or `!important`. */
export function isSafeThemeValue(value) {
  if (typeof value !== "string" || value.length === 0 || value.length > 200) return false;
  if (/[;{}<>\\\u0000-\u001f\u007f`]/.test(value)) return false;
  if (/\/\*|\*\/|!\s*important|@/i.test(value)) return false;
  if (/(?:url|image|image-set|cross-fade|element|expression|attr|env|var|src)\s*\(/i.test(value)) return false;
  // Quotes only in balanced pairs (font family names).
  for (const q of ['"', "'"]) if ((value.split(q).length - 1) % 2) return false;
  return true;
}

/** The CSS custom property for a theme token name, or null: `--plaza-x-y` stays, `color.bg` or
 *  `color-bg` become `--plaza-color-bg`. */
export function themeVariable(name) {
  if (typeof name !== "string" || name.length > 100) return null;
  if (CSS_VAR_RE.test(name)) return name;
  if (TOKEN_NAME_RE.test(name)) return "--plaza-" + name.replace(/\./g, "-");
  return null;
}

/** Keep only well-formed typed pairs: {name: {type, value}} → {"--plaza-…": {type, value}}. */
export function sanitizeTheme(theme) {
  const out = {};
  if (!theme || typeof theme !== "object" || Array.isArray(theme)) return out;
  for (const [name, entry] of Object.entries(theme)) {
    const variable = themeVariable(name);
    if (!variable || !entry || typeof entry !== "object") continue;
    const type = entry.type ?? entry.$type;
    let value = entry.value ?? entry.$value;
    if (typeof value === "number" && Number.isFinite(value)) value = String(value);
    if (!THEME_TYPES.has(type) || !isSafeThemeValue(value)) continue;
    out[variable] = { type, value };
  }
  return out;
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

function plainJson(value) {
  // A structured-clone-safe, JSON-only copy (drops functions, DOM nodes, prototypes).
  const text = JSON.stringify(value ?? {});
  if (text.length > MAX_CONTEXT_BYTES) throw new PlazaEmbedError("context_too_large", "context is too large");
  const parsed = JSON.parse(text);
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) {
    throw new PlazaEmbedError("invalid_context", "context must be a JSON object");
  }
  return parsed;
}

export class PlazaEmbedError extends Error {
  constructor(code, message) {
    super(message);
    this.name = "PlazaEmbedError";
    this.code = code;
  }
}

/** The normalised route ("/orders/7?tab=x") when `route` is a host route the widget may ask for,
 *  else null. `routes` holds path prefixes ending in "/" and exact paths; a RegExp must match the
 *  whole normalised route; a function decides. Dot segments ("..", "%2e%2e") are resolved first, so
 *  "/orders/../admin" is judged as "/admin". */
export function routeAllowed(route, routes) {
  if (typeof route !== "string" || route.length > 2000 || !ROUTE_RE.test(route)) return null;
  let url;
  try {
    url = new URL(route, "https://host.invalid");
  } catch {
    return null;
  }
  if (url.origin !== "https://host.invalid") return null;
  const path = url.pathname;
  const normalised = path + url.search + url.hash;
  if (typeof routes === "function") return routes(normalised) === true ? normalised : null;
  for (const rule of routes || []) {
    if (rule instanceof RegExp) {
      const m = normalised.match(rule);
      if (m && m[0] === normalised) return normalised;
    } else if (typeof rule === "string") {
      if (rule.endsWith("/") ? path.startsWith(rule) : path === rule) return normalised;
    }
  }
  return null;
}

const FOCUSABLE =
  'a[href], area[href], button:not([disabled]), input:not([disabled]):not([type="hidden"]), ' +
  'select:not([disabled]), textarea:not([disabled]), iframe, summary, [contenteditable=""], ' +
  '[contenteditable="true"], [tabindex]';

function focusables(doc) {
  return Array.from(doc.querySelectorAll(FOCUSABLE)).filter((el) => {
    if (el.tabIndex < 0 || el.hasAttribute("disabled") || el.closest("[inert]")) return false;
    const style = getComputedStyle(el);
    if (style.visibility === "hidden" || style.display === "none") return false;
    return el.getClientRects().length > 0;
  });
}

/** Move focus to the next (or previous) focusable element after (before) `element`. */
export function moveFocusFrom(element, backward = false) {
  const doc = element.ownerDocument;
  const all = focusables(doc);
  const following = all.filter((el) => {
    if (el === element || element.contains(el)) return false;
    const pos = element.compareDocumentPosition(el);
    return backward ? pos & Node.DOCUMENT_POSITION_PRECEDING : pos & Node.DOCUMENT_POSITION_FOLLOWING;
  });
  const target = backward ? following[following.length - 1] : following[0];
  if (target) {
    target.focus();
    return target;
  }
  // Nothing after the widget: leave it anyway, so the keyboard is never trapped inside.
  element.blur();
  const body = doc.body;
  if (!body.hasAttribute("tabindex")) body.setAttribute("tabindex", "-1");
  body.focus();
  return body;
}

let stylesInstalled = false;
function installStyles(doc) {
  if (stylesInstalled) return;
  stylesInstalled = true;
  // Static CSS written here; no value from a widget ever reaches a stylesheet. A constructed sheet
  // needs no 'unsafe-inline' in the host page's CSP; older browsers get a <style> with the nonce of
  // the script tag that loaded this module.
  const css = LOADER_CSS;
  if ("adoptedStyleSheets" in doc && typeof CSSStyleSheet === "function") {
    try {
      const sheet = new CSSStyleSheet();
      sheet.replaceSync(css);
      doc.adoptedStyleSheets = [...doc.adoptedStyleSheets, sheet];
      return;
    } catch {
      // fall through to a <style> element
    }
  }
  const style = doc.createElement("style");
  const loader = Array.from(doc.querySelectorAll("script[src]")).find((s) => s.src === import.meta.url);
  const nonce = loader?.nonce || doc.querySelector("script[nonce]")?.nonce;
  if (nonce) style.nonce = nonce;
  style.textContent = css;
  doc.head.appendChild(style);
}

const LOADER_CSS = `
.plaza-frame{display:block;width:100%;border:0;background:transparent}
.plaza-slot{display:flex;flex-direction:column;gap:var(--plaza-space-3,.75rem)}
.plaza-toasts{position:fixed;right:1rem;bottom:1rem;display:flex;flex-direction:column;gap:.5rem;z-index:2147483000;max-width:24rem}
.plaza-toast{padding:.75rem 1rem;border-radius:var(--plaza-radius,.5rem);background:var(--plaza-color-surface,#fff);color:var(--plaza-color-text,#1b1d23);border:1px solid var(--plaza-color-border,#d5d8e0);box-shadow:0 2px 8px rgb(0 0 0/.15);font:inherit}
.plaza-toast[data-kind="error"]{border-color:var(--plaza-color-danger,#b3261e)}
.plaza-toast[data-kind="success"]{border-color:var(--plaza-color-success,#1e6b35)}
.plaza-toast-from{display:block;font-size:.8em;color:var(--plaza-color-muted,#51576a)}
.plaza-upgrade{max-width:28rem;border:1px solid var(--plaza-color-border,#d5d8e0);border-radius:var(--plaza-radius,.5rem);background:var(--plaza-color-surface,#fff);color:var(--plaza-color-text,#1b1d23);padding:1.25rem}
.plaza-upgrade::backdrop{background:rgb(0 0 0/.4)}
.plaza-upgrade h2{margin:0 0 .5rem;font-size:1.15rem}
.plaza-upgrade button{font:inherit}`;

function toastRegion(doc) {
  let region = doc.querySelector(".plaza-toasts");
  if (!region) {
    region = doc.createElement("div");
    region.className = "plaza-toasts";
    region.setAttribute("role", "status");
    region.setAttribute("aria-live", "polite");
    doc.body.appendChild(region);
  }
  return region;
}

function defaultToast({ message, kind, title }, doc) {
  const region = toastRegion(doc);
  const item = doc.createElement("div");
  item.className = "plaza-toast";
  item.dataset.kind = kind;
  const from = doc.createElement("span");
  from.className = "plaza-toast-from";
  from.textContent = title;
  const text = doc.createElement("span");
  text.textContent = message;
  item.append(from, text);
  region.appendChild(item);
  while (region.children.length > 3) region.firstElementChild.remove();
  setTimeout(() => item.remove(), 6000);
}

function defaultUpgrade({ feature, title }, doc, returnFocus) {
  if (doc.querySelector("dialog.plaza-upgrade[open]")) return; // one prompt at a time
  const dialog = doc.createElement("dialog");
  dialog.className = "plaza-upgrade";
  const headingId = "plaza-upgrade-" + randomId().slice(0, 8);
  dialog.setAttribute("aria-labelledby", headingId);
  const heading = doc.createElement("h2");
  heading.id = headingId;
  heading.textContent = "Upgrade needed";
  const body = doc.createElement("p");
  body.textContent = `${title} needs the feature “${feature}”, which your organisation does not have yet. ` +
    "An administrator can enable it in Plaza.";
  const close = doc.createElement("button");
  close.type = "button";
  close.textContent = "Close";
  close.addEventListener("click", () => dialog.close());
  dialog.addEventListener("close", () => {
    dialog.remove();
    returnFocus?.focus();
  });
  dialog.append(heading, body, close);
  doc.body.appendChild(dialog);
  dialog.showModal();
  close.focus();
}

class Frame {
  constructor(host, slotName, slotEl, spec) {
    this.host = host;
    this.slotName = slotName;
    this.slot = slotEl;
    this.spec = spec;
    this.installationId = String(spec.installation_id);
    this.extensionId = String(spec.extension_id);
    this.title = String(spec.title || "Extension");
    this.minHeight = Number.isFinite(spec.min_height) ? spec.min_height : 0;
    this.maxHeight = Number.isFinite(spec.max_height) ? spec.max_height : HEIGHT_LIMIT;
    this.port = null;
    this.helloId = null;
    this.version = null;
    this.ready = false;
    this.token = null; // {token, expiresAt}; memory only
    this.tokenPromise = null;
    this.refreshTimer = null;
    this.closed = false;

    const src = new URL(spec.src, host.baseUrl);
    if (src.protocol !== "https:" && src.protocol !== "http:") throw new PlazaEmbedError("bad_frame", "bad src");
    if (src.origin === location.origin || src.origin === host.baseUrl) {
      // allow-scripts + allow-same-origin on the host's origin could lift its own sandbox, and on
      // Plaza's it would run with Plaza's cookies: a widget lives on a widget origin only.
      throw new PlazaEmbedError("bad_frame", "a widget must not share the host page's or Plaza's origin");
    }
    this.origin = src.origin;
    if (spec.origin !== undefined && spec.origin !== this.origin) throw new PlazaEmbedError("bad_frame", "origin and src disagree");

    const doc = slotEl.ownerDocument;
    const iframe = doc.createElement("iframe");
    // Attributes as Plaza answered (restricted to what a widget may ever get), set before src so the
    // first load is already sandboxed.
    iframe.setAttribute("sandbox", sandboxValue(spec.sandbox));
    iframe.setAttribute("allow", allowValue(spec.allow));
    iframe.setAttribute("title", this.title);
    iframe.setAttribute("referrerpolicy", String(spec.referrerpolicy || "no-referrer"));
    iframe.className = "plaza-frame";
    // CSSOM, not a style attribute: allowed under any style-src policy.
    Object.assign(iframe.style, { display: "block", width: "100%", border: "0" });
    iframe.dataset.plazaInstallation = this.installationId;
    iframe.dataset.plazaExtension = this.extensionId;
    iframe.style.height = `${this.clamp(Number.isFinite(spec.height) ? spec.height : this.minHeight || 150)}px`;
    iframe.src = src.href;
    this.iframe = iframe;
  }

  clamp(height) {
    const lo = Math.max(0, this.minHeight);
    const hi = Math.max(lo, Math.min(this.maxHeight, HEIGHT_LIMIT));
    return Math.round(Math.min(hi, Math.max(lo, height)));
  }

  emit(name, detail) {
    const event = new CustomEvent(`plaza:${name}`, {
      bubbles: true,
      cancelable: true,
      detail: { installation_id: this.installationId, extension_id: this.extensionId, slot: this.slotName, ...detail },
    });
    return this.slot.dispatchEvent(event);
  }

  /** window "message" from this iframe's window; already matched on event.source by the host. */
  onWindowMessage(event) {
    if (event.origin !== this.origin) return; // exact comparison, nothing looser
    const data = event.data;
    if (!isEnvelope(data) || data.type !== "hello") return;
    if (data.id === this.helloId) return; // a repeated hello: already answered once
    this.helloId = data.id;
    const offered = Array.isArray(data.payload?.versions) ? data.payload.versions.filter(Number.isInteger) : [];
    const common = offered.filter((v) => PROTOCOL_VERSIONS.includes(v));
    if (!common.length) {
      this.iframe.contentWindow?.postMessage(
        envelope("response", { ok: false, error: { code: "unsupported_version", message: "no common protocol version", supported: [...PROTOCOL_VERSIONS] } }, data.id),
        this.origin,
      );
      this.emit("error", { code: "unsupported_version" });
      return;
    }
    this.version = Math.max(...common);
    // A new hello (the widget reloaded itself) replaces the previous channel.
    this.closePort();
    const channel = new MessageChannel();
    this.port = channel.port1;
    this.port.onmessage = (e) => this.onPortMessage(e);
    const init = envelope("init", {
      version: this.version,
      installation_id: this.installationId,
      extension_id: this.extensionId,
      slot: this.slotName,
      title: this.title,
      host_origin: location.origin,
      api_base: this.host.baseUrl,
      context: this.host.context,
      theme: this.host.theme,
    }, data.id);
    this.iframe.contentWindow.postMessage(init, this.origin, [channel.port2]);
    this.pushToken().catch(() => {});
  }

  send(type, payload, replyTo = null) {
    if (!this.port || this.closed) return false;
    this.port.postMessage(envelope(type, payload, replyTo));
    return true;
  }

  reply(request, result) {
    this.send("response", { ok: true, result: result ?? {} }, request.id);
  }

  fail(request, code, message) {
    this.send("response", { ok: false, error: { code, message } }, request.id);
  }

  async onPortMessage(event) {
    const msg = event.data;
    if (!isEnvelope(msg)) return;
    const payload = msg.payload || {};
    try {
      switch (msg.type) {
        case "ready":
          this.ready = true;
          this.iframe.dataset.plazaReady = "true";
          this.emit("ready", {});
          return this.reply(msg, {});
        case "resize": {
          const h = Number(payload.height);
          if (!Number.isFinite(h)) return this.fail(msg, "invalid_payload", "height must be a number");
          const height = this.clamp(h);
          this.iframe.style.height = `${height}px`;
          return this.reply(msg, { height });
        }
        case "token.request": {
          const token = await this.currentToken(payload.force === true);
          return this.reply(msg, token);
        }
        case "navigate":
          return this.reply(msg, this.navigate(payload.route));
        case "toast": {
          let message = payload.message;
          if (typeof message !== "string" || !message.trim()) return this.fail(msg, "invalid_payload", "message must be text");
          message = message.slice(0, MAX_TOAST);
          const kind = ["info", "success", "error"].includes(payload.kind) ? payload.kind : "info";
          const detail = { message, kind, title: this.title };
          if (this.emit("toast", detail)) {
            if (this.host.options.onToast) this.host.options.onToast(detail, this.info());
            else defaultToast(detail, this.slot.ownerDocument);
          }
          return this.reply(msg, {});
        }
        case "upgrade": {
          const feature = payload.feature;
          if (typeof feature !== "string" || !FEATURE_RE.test(feature)) {
            return this.fail(msg, "invalid_payload", "feature must be a feature name");
          }
          const detail = { feature, title: this.title, extensionId: this.extensionId, installationId: this.installationId };
          if (this.emit("upgrade", detail)) {
            if (this.host.options.onUpgrade) this.host.options.onUpgrade(detail, this.info());
            else defaultUpgrade(detail, this.slot.ownerDocument, this.iframe);
          }
          return this.reply(msg, {});
        }
        case "focus.exit":
          moveFocusFrom(this.iframe, payload.direction === "backward");
          return this.reply(msg, {});
        case "hello":
          return this.fail(msg, "invalid_state", "already connected");
        case "response":
          return; // the host asks nothing of widgets in v1
        default:
          return this.fail(msg, "unsupported", `unsupported message type ${JSON.stringify(msg.type.slice(0, 64))}`);
      }
    } catch (err) {
      const code = err instanceof PlazaEmbedError ? err.code : "host_error";
      return this.fail(msg, code, err instanceof PlazaEmbedError ? err.message : "the host could not answer");
    }
  }

  navigate(requested) {
    const route = routeAllowed(requested, this.host.options.routes);
    if (route === null) throw new PlazaEmbedError("route_not_allowed", "this route is not allowed");
    const detail = { route };
    if (!this.emit("navigate", detail)) return { navigated: false };
    if (this.host.options.onNavigate) {
      this.host.options.onNavigate(route, this.info());
      return { navigated: true };
    }
    const url = new URL(route, location.origin);
    if (url.origin !== location.origin || (url.protocol !== "https:" && url.protocol !== "http:")) {
      throw new PlazaEmbedError("route_not_allowed", "this route is not allowed");
    }
    location.assign(url.href);
    return { navigated: true };
  }

  info() {
    return { installationId: this.installationId, extensionId: this.extensionId, title: this.title, slot: this.slotName, iframe: this.iframe };
  }

  async currentToken(force = false) {
    const now = Date.now();
    if (!force && this.token && this.token.expiresAt - now > REFRESH_MARGIN_S * 1000) return this.tokenView();
    await this.fetchToken();
    return this.tokenView();
  }

  tokenView() {
    const t = this.token;
    return { token: t.token, expires_at: t.expiresAtIso, expires_in: Math.max(0, Math.floor((t.expiresAt - Date.now()) / 1000)) };
  }

  fetchToken() {
    if (this.tokenPromise) return this.tokenPromise;
    this.tokenPromise = (async () => {
      const controller = new AbortController();
      const timer = setTimeout(() => controller.abort(), TOKEN_TIMEOUT_MS);
      try {
        const res = await fetch(`${this.host.baseUrl}/embed/v1/launches/${encodeURIComponent(this.host.launch)}/tokens`, {
          method: "POST",
          credentials: "omit",
          mode: "cors",
          cache: "no-store",
          referrerPolicy: "no-referrer",
          headers: { "Content-Type": "application/json", Accept: "application/json" },
          body: JSON.stringify({ installation_id: this.installationId }),
          signal: controller.signal,
        });
        const body = await res.json().catch(() => ({}));
        if (!res.ok || typeof body.token !== "string") {
          throw new PlazaEmbedError(body?.error?.code || "token_unavailable", "Plaza did not issue a token");
        }
        const expiresIn = Number.isFinite(body.expires_in) ? body.expires_in : 60;
        this.token = { token: body.token, expiresAt: Date.now() + expiresIn * 1000, expiresAtIso: body.expires_at ?? null };
        this.scheduleRefresh(expiresIn);
      } catch (err) {
        if (err instanceof PlazaEmbedError) throw err;
        throw new PlazaEmbedError(err?.name === "AbortError" ? "timeout" : "token_unavailable", "Plaza did not issue a token");
      } finally {
        clearTimeout(timer);
        this.tokenPromise = null;
      }
    })();
    return this.tokenPromise;
  }

  scheduleRefresh(expiresIn) {
    clearTimeout(this.refreshTimer);
    const lead = Math.min(REFRESH_MARGIN_S, expiresIn / 3);
    const delay = Math.max(1, expiresIn - lead) * 1000;
    this.refreshTimer = setTimeout(() => this.pushToken(true).catch(() => {}), delay);
  }

  /** Fetch (or reuse) the token and push it to the widget on its port. */
  async pushToken(force = false) {
    if (!this.port || this.closed) return;
    const token = await this.currentToken(force);
    this.send("token", token);
  }

  closePort() {
    if (this.port) {
      this.port.onmessage = null;
      this.port.close();
      this.port = null;
    }
  }

  destroy() {
    this.closed = true;
    clearTimeout(this.refreshTimer);
    this.closePort();
    this.token = null;
    this.iframe.remove();
  }
}

class Host {
  constructor(options) {
    if (!options || typeof options.launch !== "string" || !/^[A-Za-z0-9_-]{1,100}$/.test(options.launch)) {
      throw new PlazaEmbedError("invalid_launch", "mount() needs the launch id from your backend");
    }
    const base = new URL(options.baseUrl || new URL(import.meta.url).origin);
    this.baseUrl = base.origin;
    this.launch = options.launch;
    this.options = options;
    this.context = plainJson(options.context || {});
    this.theme = {};
    this.scheme = null;
    this.frames = [];
    this.doc = options.document || document;
    this.onMessage = (event) => {
      // Match the sender by identity first: only a window we created may speak to us.
      if (!event.source) return;
      const frame = this.frames.find((f) => !f.closed && f.iframe.contentWindow === event.source);
      if (frame) frame.onWindowMessage(event);
    };
    window.addEventListener("message", this.onMessage);
  }

  async loadTheme(scheme) {
    const query = scheme === "dark" || scheme === "light" ? `?scheme=${scheme}` : "";
    try {
      const res = await fetch(`${this.baseUrl}/embed/v1/launches/${encodeURIComponent(this.launch)}/theme${query}`, {
        credentials: "omit", mode: "cors", referrerPolicy: "no-referrer",
      });
      if (res.ok) {
        const body = await res.json();
        this.theme = sanitizeTheme(body.theme);
        this.scheme = body.scheme === "dark" ? "dark" : "light";
      }
    } catch {
      // Keep the current theme: widgets fall back to their own defaults.
    }
    return this.theme;
  }

  async mountSlot(slotEl) {
    const name = slotEl.getAttribute("data-plaza-slot");
    if (!name || slotEl.dataset.plazaMounted === "true") return [];
    slotEl.dataset.plazaMounted = "true";
    slotEl.classList.add("plaza-slot");
    const res = await fetch(
      `${this.baseUrl}/embed/v1/launches/${encodeURIComponent(this.launch)}/slots/${encodeURIComponent(name)}`,
      { credentials: "omit", mode: "cors", referrerPolicy: "no-referrer", headers: { Accept: "application/json" } },
    );
    if (!res.ok) {
      slotEl.dataset.plazaError = String(res.status);
      slotEl.dispatchEvent(new CustomEvent("plaza:error", { bubbles: true, detail: { slot: name, status: res.status } }));
      return [];
    }
    const body = await res.json();
    // The launch's context (set by the host's backend) unless the page passed its own to mount().
    if (!this.options.context && body.context && typeof body.context === "object" && !Array.isArray(body.context)) {
      try {
        this.context = plainJson(body.context);
      } catch {
        // too large or not an object: keep the current context
      }
    }
    const made = [];
    for (const spec of Array.isArray(body.frames) ? body.frames : []) {
      try {
        const frame = new Frame(this, name, slotEl, spec);
        this.frames.push(frame); // registered before the iframe loads, so its hello is not missed
        slotEl.appendChild(frame.iframe);
        made.push(frame);
      } catch (err) {
        slotEl.dispatchEvent(new CustomEvent("plaza:error", { bubbles: true, detail: { slot: name, code: err.code || "bad_frame" } }));
      }
    }
    return made;
  }

  setTheme(theme) {
    if (typeof theme === "string") return this.loadTheme(theme).then(() => this.setTheme(this.theme));
    this.theme = sanitizeTheme(theme);
    if (this.scheme) this.doc.documentElement.dataset.plazaScheme = this.scheme;
    for (const f of this.frames) f.send("theme", { theme: this.theme });
    if (this.options.applyThemeToHost) applyTheme(this.doc.documentElement, this.theme);
    return this.theme;
  }

  setContext(context) {
    this.context = plainJson(context);
    for (const f of this.frames) f.send("context", { context: this.context });
  }

  destroy() {
    window.removeEventListener("message", this.onMessage);
    for (const f of this.frames) f.destroy();
    this.frames = [];
  }
}

/** Apply sanitized typed pairs to an element's custom properties (style.setProperty only). */
export function applyTheme(element, theme) {
  for (const [variable, { value }] of Object.entries(sanitizeTheme(theme))) element.style.setProperty(variable, value);
}

/**
 * Fill every `[data-plaza-slot]` element (inside `options.root`, default the document) with the
 * widgets Plaza returns for the launch. Resolves to a controller once the iframes are in the page.
 */
export async function mount(options) {
  const host = new Host(options);
  installStyles(host.doc);
  if (options.theme !== false) await host.loadTheme();
  if (options.applyThemeToHost) applyTheme(host.doc.documentElement, host.theme);
  if (host.scheme) host.doc.documentElement.dataset.plazaScheme = host.scheme;
  const root = options.root || host.doc;
  const slots = Array.from(root.querySelectorAll("[data-plaza-slot]"));
  await Promise.all(slots.map((el) => host.mountSlot(el)));
  return {
    launch: host.launch,
    get frames() {
      return host.frames.map((f) => f.info());
    },
    /** Push typed pairs, or "light"/"dark" to fetch and push the tenant's pack for that scheme. */
    setTheme: (theme) => host.setTheme(theme),
    setContext: (context) => host.setContext(context),
    loadTheme: async (scheme) => {
      await host.loadTheme(scheme);
      return host.setTheme(host.theme);
    },
    get scheme() {
      return host.scheme;
    },
    mountSlot: (el) => host.mountSlot(el),
    destroy: () => host.destroy(),
  };
}

// Auto-mount: <script type="module" src=".../embed/embed.js" data-plaza-launch="lch_…"
// data-plaza-routes="/orders/ /help" data-plaza-apply-theme></script>; the controller is then
// globalThis.plazaEmbed and document receives "plaza:mounted".
function autoMount() {
  const self = new URL(import.meta.url);
  const tag = Array.from(document.querySelectorAll("script[data-plaza-launch]")).find((s) => {
    try {
      return new URL(s.src, location.href).href === self.href;
    } catch {
      return false;
    }
  });
  if (!tag) return;
  const routes = (tag.dataset.plazaRoutes || "").split(/\s+/).filter(Boolean);
  const applyThemeToHost = tag.hasAttribute("data-plaza-apply-theme");
  mount({ launch: tag.dataset.plazaLaunch, baseUrl: self.origin, routes, applyThemeToHost }).then(
    (controller) => {
      globalThis.plazaEmbed = controller;
      document.dispatchEvent(new CustomEvent("plaza:mounted"));
    },
    () => document.dispatchEvent(new CustomEvent("plaza:error", { detail: { code: "mount_failed" } })),
  );
}

if (typeof document !== "undefined") {
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", autoMount, { once: true });
  else autoMount();
}
