// Types for Plaza's widget SDK (sdk.js, served at /w/sdk.js on the widget origin), protocol v1.
// See docs/embed-protocol.md.

export declare const PROTOCOL_VERSIONS: readonly number[];
export declare const VERSION: string;

export type ThemeTokenType =
  | "color"
  | "dimension"
  | "fontFamily"
  | "fontWeight"
  | "duration"
  | "number"
  | "shadow"
  | "cubicBezier"
  | "string";

export interface ThemeToken {
  type: ThemeTokenType;
  value: string;
}

/** Token name (`color.bg`, `color-bg` or `--plaza-color-bg`) → typed value. */
export type Theme = Record<string, ThemeToken>;

/** An error the host or Plaza answered with. */
export declare class PlazaError extends Error {
  /** Stable code: `timeout`, `unsupported`, `route_not_allowed`, `entitlement_required`, `http_404`, … */
  readonly code: string;
  /** The HTTP status for API errors, otherwise null. */
  readonly status: number | null;
  /** The API error's `param` (for `entitlement_required`: the feature), otherwise null. */
  readonly param: string | null;
  constructor(code: string, message?: string, extra?: { status?: number | null; param?: string | null });
}

export interface ConnectOptions {
  /** Handshake timeout in ms (default 10000). */
  timeout?: number;
  /** Apply `theme` pushes to `--plaza-*` variables on <html> (default true). */
  applyTheme?: boolean;
  /** Observe <body> and ask the host for its height (default false). */
  autoResize?: boolean;
  /** Tab past the last focusable element hands focus back to the host (default true). */
  focusExit?: boolean;
  /** Send `ready` once connected (default true). */
  ready?: boolean;
}

export interface ApiOptions {
  method?: string;
  /** Sent as JSON with `Content-Type: application/json`. */
  json?: unknown;
  body?: BodyInit;
  headers?: Record<string, string>;
  signal?: AbortSignal;
}

export interface TokenPush {
  expires_at: string | null;
  expires_in: number | null;
}

export interface PlazaEvents {
  /** A fresh token arrived (the token itself stays inside the SDK; use getToken()). */
  token: TokenPush;
  theme: Theme;
  context: Record<string, unknown>;
}

export interface PlazaClient {
  /** The negotiated protocol version. */
  readonly version: number;
  readonly installationId: string;
  readonly extensionId: string;
  readonly slot: string;
  /** The widget's title in this slot (from the manifest), as the host labels the iframe. */
  readonly title: string;
  readonly hostOrigin: string;
  readonly context: Record<string, unknown>;
  readonly theme: Theme;
  /** Plaza's origin (from `<meta name="plaza-api-base">`). */
  readonly apiBase: string | null;
  /** The delegated JWT, from memory while it has > 10 s to live, otherwise asked of the host. */
  getToken(options?: { force?: boolean }): Promise<string>;
  /** `fetch` `{apiBase}/api/v1/{path}` with the token; resolves with the JSON body, rejects with PlazaError. */
  api<T = unknown>(path: string, options?: ApiOptions): Promise<T>;
  /** Ask for a height in CSS px; resolves with the height the host set (clamped to the slot's limits). */
  resize(height: number): Promise<number>;
  /** Ask the host to go to one of its routes; rejects with `route_not_allowed`. */
  navigate(route: string): Promise<{ navigated: boolean }>;
  /** A short text notice in the host page. */
  toast(message: string, options?: { kind?: "info" | "success" | "error" }): Promise<Record<string, never>>;
  /** Ask the host to show its upgrade prompt for `feature`. */
  upgrade(feature: string): Promise<Record<string, never>>;
  ready(): Promise<Record<string, never>>;
  focusExit(direction?: "forward" | "backward"): Promise<Record<string, never>>;
  on<K extends keyof PlazaEvents>(type: K, listener: (detail: PlazaEvents[K]) => void): () => void;
  /** A raw protocol request; resolves with `result` or rejects with PlazaError. */
  request(type: string, payload?: object, options?: { timeout?: number }): Promise<Record<string, unknown>>;
  close(): void;
}

/** Handshake with the host page (once; later calls resolve to the same client). */
export declare function connect(options?: ConnectOptions): Promise<PlazaClient>;

export declare function getToken(options?: { force?: boolean }): Promise<string>;
export declare function api<T = unknown>(path: string, options?: ApiOptions): Promise<T>;
export declare function resize(height: number): Promise<number>;
export declare function navigate(route: string): Promise<{ navigated: boolean }>;
export declare function toast(message: string, options?: { kind?: "info" | "success" | "error" }): Promise<Record<string, never>>;
export declare function upgrade(feature: string): Promise<Record<string, never>>;
export declare function focusExit(direction?: "forward" | "backward"): Promise<Record<string, never>>;
/** Throws PlazaError `not_connected` before connect() has resolved. */
export declare function on<K extends keyof PlazaEvents>(type: K, listener: (detail: PlazaEvents[K]) => void): () => void;

export declare function applyTheme(theme: Theme, root?: HTMLElement): string[];
export declare function isSafeThemeValue(value: unknown): boolean;
export declare function themeVariable(name: string): string | null;
