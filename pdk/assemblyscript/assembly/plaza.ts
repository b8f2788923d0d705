// plaza.ts: the AssemblyScript PDK for Plaza sandbox modules.
//
// The contract is docs/sandbox-abi.md. This file declares the `plaza` host functions as
// WebAssembly imports and adds UTF-8 string helpers on top of them. Build with (pdk/assemblyscript):
//
//   asc assembly/hook.ts -o build/hook.wasm -O3 --runtime stub --use abort=assembly/plaza/abort
//
// A hook is an exported function of type () -> i32 that returns 0 on success:
//
//   import { readInput, writeOutput } from "./plaza";
//   export function on_order_created(): i32 {
//     const input = readInput();
//     ...
//     return writeOutput('{"ok":true}') < 0 ? 1 : 0;
//   }
//
// Only the host functions a module actually calls end up as imports, and each one needs its
// scope: kv_get needs kv:read (or kv:write), kv_set and kv_delete need kv:write, emit_event needs
// an events:emit:<type> scope, http_fetch an http:fetch:<host> scope. Importing one that was not
// granted ends the call capability_not_granted before it runs.

// Host function return codes: >= 0 is success (often a length); these match apps/runtime/outcomes.py.
export const E_NOT_FOUND: i32 = -1; // no such key
export const E_TOO_LARGE: i32 = -2; // output, KV value or event payload over its limit
export const E_QUOTA: i32 = -3; // the installation's KV quota would be exceeded
export const E_DENIED: i32 = -4; // event type not granted, or KV in a call without an installation
export const E_INVALID: i32 = -5; // malformed argument (empty key, payload not a JSON object, ...)
export const E_BOUNDS: i32 = -6; // pointer/length outside the module's memory
export const E_LIMIT: i32 = -7; // per-call limit reached: log volume, KV calls, events
export const E_NETWORK: i32 = -8; // http_fetch: DNS, connection, TLS or protocol failure, time-out

// --- raw host functions (every parameter and result is an i32; pointers are wasm32 addresses) ---
@external("plaza", "input_len")
export declare function input_len(): i32;
@external("plaza", "input_read")
export declare function input_read(ptr: usize): i32;
@external("plaza", "output_write")
export declare function output_write(ptr: usize, len: i32): i32;
@external("plaza", "log")
export declare function log_write(ptr: usize, len: i32): i32;
@external("plaza", "kv_get")
export declare function kv_get(kptr: usize, klen: i32, bptr: usize, bcap: i32): i32;
@external("plaza", "kv_set")
export declare function kv_set(kptr: usize, klen: i32, vptr: usize, vlen: i32): i32;
@external("plaza", "kv_delete")
export declare function kv_delete(kptr: usize, klen: i32): i32;
@external("plaza", "emit_event")
export declare function emit_event(tptr: usize, tlen: i32, pptr: usize, plen: i32): i32;
// http_fetch takes a JSON request and writes a JSON response: see docs/sandbox-abi.md.
@external("plaza", "http_fetch")
export declare function http_fetch(rptr: usize, rlen: i32, bptr: usize, bcap: i32): i32;

// --- abort ---------------------------------------------------------------------------------------
// AssemblyScript's default `abort` is an import, `env.abort`, which the sandbox refuses
// (import_unknown). Build with `--use abort=assembly/plaza/abort` so failed assertions, bounds
// checks and `throw` land here instead: a trap, which ends the call `trap`.
export function abort(
  message: string | null,
  fileName: string | null,
  lineNumber: u32,
  columnNumber: u32,
): void {
  unreachable();
}

// --- helpers -------------------------------------------------------------------------------------

function utf8(s: string): ArrayBuffer {
  return String.UTF8.encode(s);
}

// The call's input (compact UTF-8 JSON) as a string; "" when the call has no input.
export function readInput(): string {
  const n = input_len();
  if (n <= 0) return "";
  const buf = new ArrayBuffer(n);
  if (input_read(changetype<usize>(buf)) != n) return "";
  return String.UTF8.decode(buf);
}

// Sets the call's output (JSON text). 0, E_TOO_LARGE or E_BOUNDS.
export function writeOutput(json: string): i32 {
  const buf = utf8(json);
  return output_write(changetype<usize>(buf), buf.byteLength);
}

// Appends one line (no newline needed) to the call's log. A refused line (E_LIMIT) is dropped.
export function log(msg: string): void {
  const buf = utf8(msg);
  log_write(changetype<usize>(buf), buf.byteLength);
}

// The value stored under `key` (as UTF-8 text), or null if it is not stored or the read is
// refused (e.g. E_DENIED in a call without an installation). Needs kv:read or kv:write.
export function kvGet(key: string): string | null {
  const k = utf8(key);
  let buf = new ArrayBuffer(256);
  let n = kv_get(changetype<usize>(k), k.byteLength, changetype<usize>(buf), buf.byteLength);
  if (n > buf.byteLength) {
    // too big for the first buffer: nothing was copied, read again with one that fits
    buf = new ArrayBuffer(n);
    n = kv_get(changetype<usize>(k), k.byteLength, changetype<usize>(buf), buf.byteLength);
  }
  if (n < 0 || n > buf.byteLength) return null;
  return String.UTF8.decode(buf.slice(0, n));
}

// Stores `value` under `key`. 0, E_TOO_LARGE, E_QUOTA, ... Needs kv:write.
export function kvSet(key: string, value: string): i32 {
  const k = utf8(key);
  const v = utf8(value);
  return kv_set(changetype<usize>(k), k.byteLength, changetype<usize>(v), v.byteLength);
}

// Removes `key`. 0 or E_NOT_FOUND. Needs kv:write.
export function kvDelete(key: string): i32 {
  const k = utf8(key);
  return kv_delete(changetype<usize>(k), k.byteLength);
}

// Queues an event of `type` with a JSON object payload. Released only if the call ends ok.
// 0, E_DENIED (type not granted), E_INVALID, E_LIMIT, ...
export function emit(type: string, json: string): i32 {
  const t = utf8(type);
  const p = utf8(json);
  return emit_event(changetype<usize>(t), t.byteLength, changetype<usize>(p), p.byteLength);
}
