// Types for Plaza's embed loader (embed.js), protocol v1. See docs/embed-protocol.md.

/** Protocol versions this loader speaks. */
export declare const PROTOCOL_VERSIONS: readonly number[];
export declare const VERSION: string;

/** W3C DTCG-style token types a theme may carry. */
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

/** One typed theme value. `$type`/`$value` (DTCG spelling) are accepted as well. */
export interface ThemeToken {
  type: ThemeTokenType;
  value: string;
}

/** Token name (`color.bg`, `color-bg` or `--plaza-color-bg`) → typed value. Never raw CSS. */
export type Theme = Record<string, ThemeToken>;

/** The envelope of every protocol v1 message. */
export interface Envelope<T extends string = string, P extends object = Record<string, unknown>> {
  plaza: 1;
  id: string;
  type: T;
  payload: P;
  replyTo: string | null;
}

/** One widget as Plaza's slots endpoint answers it. */
export interface FrameSpec {
  installation_id: string;
  extension_id: string;
  title: string;
  src: string;
  sandbox: string;
  allow: string;
  referrerpolicy: ReferrerPolicy | string;
  height: number;
  min_height: number;
  max_height: number;
}

export interface FrameInfo {
  installationId: string;
  extensionId: string;
  title: string;
  slot: string;
  iframe: HTMLIFrameElement;
}

export interface ToastDetail {
  message: string;
  kind: "info" | "success" | "error";
  /** The widget's title, so the user knows which extension speaks. */
  title: string;
}

export interface UpgradeDetail {
  feature: string;
  title: string;
  extensionId: string;
  installationId: string;
}

/** A host route rule: a path prefix ending in "/", an exact path, or a RegExp matching the whole route. */
export type RouteRule = string | RegExp;

export interface MountOptions {
  /** The launch id your backend obtained from `POST /api/v1/orgs/{org}/embed/launches`. */
  launch: string;
  /** Plaza's origin; defaults to the origin embed.js was loaded from. */
  baseUrl?: string;
  /** Host routes a widget may ask to navigate to; nothing is allowed when omitted. */
  routes?: RouteRule[] | ((route: string) => boolean);
  /** Called for an allowed `navigate`; default: `location.assign` to the same-origin route. */
  onNavigate?: (route: string, frame: FrameInfo) => void;
  /** Called for `upgrade`; default: an accessible modal `<dialog>` rendered by the host. */
  onUpgrade?: (detail: UpgradeDetail, frame: FrameInfo) => void;
  /** Called for `toast`; default: a polite live region, text only. */
  onToast?: (detail: ToastDetail, frame: FrameInfo) => void;
  /** JSON object handed to widgets in `init` and `context`. */
  context?: Record<string, unknown>;
  /** Fetch the launch's theme and send it to widgets (default true). */
  theme?: boolean;
  /** Also apply the theme's `--plaza-*` variables to the host page's root element. */
  applyThemeToHost?: boolean;
  /** Where to look for `[data-plaza-slot]` elements (default: the whole document). */
  root?: ParentNode;
  document?: Document;
}

export interface EmbedController {
  readonly launch: string;
  readonly frames: FrameInfo[];
  /** Validate and push typed pairs to every widget (returns what was kept), or pass "light"/"dark"
   * to fetch the tenant's pack for that scheme and push it. */
  setTheme(theme: Theme): Theme;
  setTheme(scheme: "light" | "dark"): Promise<Theme>;
  /** Re-fetch the launch's theme (optionally for a scheme) and push it. */
  loadTheme(scheme?: "light" | "dark"): Promise<Theme>;
  /** The scheme of the theme last fetched from Plaza. */
  readonly scheme: "light" | "dark" | null;
  setContext(context: Record<string, unknown>): void;
  /** Fill one more slot element added after mount(). */
  mountSlot(element: Element): Promise<unknown[]>;
  /** Remove the iframes, close the ports and forget the tokens. */
  destroy(): void;
}

export declare class PlazaEmbedError extends Error {
  readonly code: string;
  constructor(code: string, message: string);
}

export declare function mount(options: MountOptions): Promise<EmbedController>;
export declare function sanitizeTheme(theme: unknown): Theme;
export declare function applyTheme(element: HTMLElement, theme: Theme): void;
export declare function isSafeThemeValue(value: unknown): boolean;
export declare function themeVariable(name: string): string | null;
/** The normalised route when allowed, else null. */
export declare function routeAllowed(route: string, routes: MountOptions["routes"]): string | null;
export declare function moveFocusFrom(element: Element, backward?: boolean): Element;

/** Events dispatched on the slot element (they bubble; `navigate`, `upgrade` and `toast` are
 * cancelable — call preventDefault() to handle them yourself). */
export interface PlazaSlotEventMap {
  "plaza:ready": CustomEvent<{ installation_id: string; extension_id: string; slot: string }>;
  "plaza:navigate": CustomEvent<{ installation_id: string; extension_id: string; slot: string; route: string }>;
  "plaza:upgrade": CustomEvent<UpgradeDetail & { installation_id: string; extension_id: string; slot: string }>;
  "plaza:toast": CustomEvent<ToastDetail & { installation_id: string; extension_id: string; slot: string }>;
  "plaza:error": CustomEvent<{ slot?: string; status?: number; code?: string }>;
}
