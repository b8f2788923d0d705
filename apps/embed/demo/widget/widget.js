// The demo extension's widget script (both slots): what a widget author writes with Plaza's SDK.
// Connect to the host page, read the organisation through Plaza's API with the delegated token,
// follow the host's theme (the SDK sets the --plaza-* variables widget.css uses), resize, toast,
// navigate and ask for an upgrade. The markup is in the HTML files; this only wires it, with
// textContent (no HTML strings) and no inline styles.
import { connect, PlazaError } from "/w/sdk.js";

const $ = (id) => document.getElementById(id);
const EXPORT_FEATURE = "reports.export"; // not free: an admin grants it, or the host shows its upgrade prompt
const status = $("status");

function say(node, text, tone = "") {
  if (!node) return;
  node.textContent = text;
  node.dataset.tone = tone;
}

function claims(token) {
  // Reading our own token's claims (not verifying them: Plaza's API and our backend do that).
  try {
    const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(atob(part + "=".repeat((4 - (part.length % 4)) % 4)));
  } catch {
    return {};
  }
}

function orderOf(context) {
  const id = context?.order?.id ?? context?.order_id;
  return id === undefined || id === null ? null : String(id);
}

async function sidebar(plaza, org) {
  const order = $("order");
  const showOrder = (context) => {
    const id = orderOf(context);
    order.textContent = id ? `Order #${id}` : "No order selected";
  };
  showOrder(plaza.context);
  plaza.on("context", showOrder);

  $("btn-save").addEventListener("click", () => {
    const text = $("note").value.trim();
    plaza.toast(text ? "Note saved" : "Write a note first", { kind: text ? "success" : "info" }).catch(() => {});
  });
  $("btn-open").addEventListener("click", () => {
    const id = orderOf(plaza.context);
    plaza.navigate(id ? `/demo-host/?order=${encodeURIComponent(id)}` : "/demo-host/").catch((err) => {
      plaza.toast(`The host did not open it (${err.code}).`, { kind: "error" }).catch(() => {});
    });
  });
  const more = $("btn-more");
  const history = $("history");
  more.addEventListener("click", () => {
    const show = history.hidden;
    history.hidden = !show;
    more.setAttribute("aria-expanded", String(show));
    more.textContent = show ? "Hide history" : "Show history";
  });

  const orgLine = $("org-name");
  try {
    const info = await plaza.api(`orgs/${encodeURIComponent(org)}`);
    orgLine.textContent = `Notes for ${info.name}`;
  } catch (err) {
    say(orgLine, `The organisation is not available (${err.code}).`, "error");
  }
}

async function card(plaza, org) {
  const count = $("member-count");
  const result = $("report-result");
  $("btn-report").addEventListener("click", async () => {
    try {
      await plaza.api(`entitlements/${EXPORT_FEATURE}`);
      say(result, "The export is ready.", "ok");
    } catch (err) {
      if (err instanceof PlazaError && err.code === "entitlement_required") {
        say(result, "Exports need an upgrade.");
        await plaza.upgrade(err.param || EXPORT_FEATURE).catch(() => {});
      } else say(result, `Plaza answered ${err.code}.`, "error");
    }
  });
  try {
    const page = await plaza.api(`orgs/${encodeURIComponent(org)}/members?limit=100`);
    count.textContent = String(page.data.length) + (page.next_cursor ? "+" : "");
  } catch (err) {
    count.textContent = "—";
    // A scope the organisation did not grant (or the user lacks) is normal, not an error.
    if (err.code === "missing_scope" || err.status === 403) say($("member-caption"), "Member access was not granted to this app.");
    else say($("member-caption"), `Members are not available (${err.code}).`, "error");
  }
}

async function main() {
  let plaza;
  try {
    plaza = await connect({ autoResize: true });
  } catch (err) {
    say(status, `Could not connect to the host page (${err.code || "error"}).`, "error");
    return;
  }
  if (plaza.title) $("title").textContent = plaza.title;
  let org = null;
  try {
    org = claims(await plaza.getToken()).org;
    say(status, ""); // connected: nothing to announce
  } catch (err) {
    say(status, `No access token (${err.code}).`, "error");
  }
  // Only now: card() and sidebar() attach their click handlers before their first await, so a
  // click after data-connected is never lost (it was, while getToken was still pending).
  document.documentElement.dataset.connected = "true";
  if (document.body.dataset.slot === "dashboard.card") await card(plaza, org);
  else await sidebar(plaza, org);
}

main();
