// order_tagger.ts: tags an order.created event (apps/events/catalog/order.created.json).
// The AssemblyScript twin of pdk/c/examples/order_tagger.c: same input, output, log and KV.
//
// Hook: on_order_created. Scopes: kv:write (it keeps a count of the orders it has seen).
// Input:  the order.created payload, e.g. {"order_id":"ord_1001",...,"line_items":[{"sku":...}]}
// Output: {"tags":["items:1","quantity:2","currency:EUR"],"orders_seen":1}
//         plus a "bulk" tag when the quantities add up to 10 or more.
// Log:    "order_tagger: ord_1001 has 1 line item(s), quantity 2"
//
// There is no JSON parser here. It relies on what the ABI promises about the input: compact JSON
// (no spaces) with every quote inside a string escaped, so "sku": can only be a key. Good enough
// for a fixture; a real extension would use a JSON library.
//
// Build: cd pdk/assemblyscript && npm run build     (writes build/order_tagger.wasm)
import { kvGet, kvSet, log, readInput, writeOutput } from "./plaza";

const COUNTER_KEY = "orders_seen";

// The raw text of the string value after `"key":"` (no unescaping), or null.
function stringField(json: string, pattern: string): string | null {
  const at = json.indexOf(pattern);
  if (at < 0) return null;
  const start = at + pattern.length;
  let end = start;
  while (end < json.length && !(json.charCodeAt(end) == 0x22 && json.charCodeAt(end - 1) != 0x5c)) end++;
  return json.substring(start, end);
}

function count(json: string, needle: string): u32 {
  let n: u32 = 0;
  for (let p = json.indexOf(needle); p >= 0; p = json.indexOf(needle, p + 1)) n++;
  return n;
}

// The sum of the "quantity": values.
function sumQuantities(json: string): u64 {
  const key = '"quantity":';
  let total: u64 = 0;
  for (let p = json.indexOf(key); p >= 0; p = json.indexOf(key, p)) {
    p += key.length;
    let q: u64 = 0;
    while (p < json.length) {
      const c = json.charCodeAt(p);
      if (c < 0x30 || c > 0x39) break;
      q = q * 10 + <u64>(c - 0x30);
      p++;
    }
    total += q;
  }
  return total;
}

// Increments the counter in KV storage (a decimal string); returns the new value, or 0 if the
// store refused.
function bumpCounter(): u64 {
  let n: u64 = 0;
  const stored = kvGet(COUNTER_KEY);
  if (stored != null) {
    for (let i = 0; i < stored.length; i++) n = n * 10 + <u64>(stored.charCodeAt(i) - 0x30);
  }
  n++;
  return kvSet(COUNTER_KEY, n.toString()) == 0 ? n : 0;
}

export function on_order_created(): i32 {
  const input = readInput();
  if (input.length == 0) {
    log("order_tagger: no input");
    return 2;
  }

  const items = count(input, '"sku":');
  const quantity = sumQuantities(input);
  const id = stringField(input, '"order_id":"');
  const currency = stringField(input, '"currency":"');

  log("order_tagger: " + (id != null ? id : "") + " has " + items.toString() + " line item(s), quantity " + quantity.toString());

  const seen = bumpCounter();
  if (seen == 0) return 3;

  let out = '{"tags":["items:' + items.toString() + '","quantity:' + quantity.toString() + '"';
  if (currency != null) out += ',"currency:' + currency + '"';
  if (quantity >= 10) out += ',"bulk"';
  out += '],"orders_seen":' + seen.toString() + "}";
  return writeOutput(out) == 0 ? 0 : 4;
}
