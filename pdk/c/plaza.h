/* plaza.h: the C PDK for Plaza sandbox modules (header only).
 *
 * The contract is docs/sandbox-abi.md. This header declares the `plaza` host functions as
 * WebAssembly imports and adds a few helpers on top of them. Build with the Zig toolchain from
 * PyPI (pdk/c/README.md):
 *
 *     python -m ziglang cc --target=wasm32-wasi -O2 -mexec-model=reactor -o hook.wasm hook.c
 *
 * A hook is an exported function of type () -> i32 that returns 0 on success:
 *
 *     #include "plaza.h"
 *     PLAZA_HOOK(on_order_created) {
 *         size_t len;
 *         char *input = plaza_input(&len);
 *         ...
 *         return plaza_output_str("{\"ok\":true}") < 0;
 *     }
 *
 * Only the host functions a module actually calls end up as imports, and each one needs its
 * scope: kv_get needs kv:read (or kv:write), kv_set and kv_delete need kv:write, emit_event needs
 * an events:emit:<type> scope, http_fetch an http:fetch:<host> scope. Importing one that was not granted ends the call
 * capability_not_granted before it runs.
 *
 * Plaza never calls _initialize, so C constructors do not run. wasi-libc's malloc needs none (it
 * sets itself up on first use); code that relies on __attribute__((constructor)) or on C++ static
 * initialisers must call them itself.
 */
#ifndef PLAZA_H
#define PLAZA_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Host function return codes: >= 0 is success (often a length); these match apps/runtime/outcomes.py. */
#define PLAZA_E_NOT_FOUND (-1) /* no such key */
#define PLAZA_E_TOO_LARGE (-2) /* output, KV value or event payload over its limit */
#define PLAZA_E_QUOTA (-3)     /* the installation's KV quota would be exceeded */
#define PLAZA_E_DENIED (-4)    /* event type not granted, or KV in a call without an installation */
#define PLAZA_E_INVALID (-5)   /* malformed argument (empty key, payload not a JSON object, ...) */
#define PLAZA_E_BOUNDS (-6)    /* pointer/length outside the module's memory */
#define PLAZA_E_LIMIT (-7)     /* per-call limit reached: log volume, KV calls, events */
#define PLAZA_E_NETWORK (-8)   /* http_fetch: DNS, connection, TLS or protocol failure, time-out */

/* Declares a hook: an export `name` of type () -> i32. Follow it with the body. */
#define PLAZA_HOOK(name) __attribute__((export_name(#name))) int32_t name(void)

#define PLAZA_IMPORT(name) __attribute__((import_module("plaza"), import_name(#name)))

/* --- raw host functions (every parameter and result is an i32; pointers are wasm32 addresses) -- */
PLAZA_IMPORT(input_len) int32_t plaza_input_len(void);
PLAZA_IMPORT(input_read) int32_t plaza_input_read(void *buf);
PLAZA_IMPORT(output_write) int32_t plaza_output_write(const void *ptr, int32_t len);
PLAZA_IMPORT(log) int32_t plaza_log_write(const void *ptr, int32_t len);
PLAZA_IMPORT(kv_get) int32_t plaza_kv_get_raw(const void *key, int32_t key_len, void *buf, int32_t buf_cap);
PLAZA_IMPORT(kv_set) int32_t plaza_kv_set_raw(const void *key, int32_t key_len, const void *val, int32_t val_len);
PLAZA_IMPORT(kv_delete) int32_t plaza_kv_delete_raw(const void *key, int32_t key_len);
PLAZA_IMPORT(emit_event)
int32_t plaza_emit_event(const void *type, int32_t type_len, const void *payload, int32_t payload_len);
/* http_fetch takes a JSON request and writes a JSON response: see docs/sandbox-abi.md. */
PLAZA_IMPORT(http_fetch) int32_t plaza_http_fetch(const void *req, int32_t req_len, void *resp, int32_t resp_cap);

/* --- helpers ------------------------------------------------------------------------------------ */

/* The call's input (compact UTF-8 JSON), read into a malloc'd buffer with a NUL added after it, so
 * string functions work on it. *len (if not NULL) gets its length; 0 means the call has no input.
 * Returns NULL if malloc fails or the read is refused. Free it with free(). */
static inline char *plaza_input(size_t *len) {
    int32_t n = plaza_input_len();
    char *buf = malloc((size_t)n + 1);
    if (buf == NULL) return NULL;
    if (n > 0 && plaza_input_read(buf) != n) {
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    if (len) *len = (size_t)n;
    return buf;
}

/* Sets the call's output: `len` bytes of UTF-8 JSON. 0, PLAZA_E_TOO_LARGE or PLAZA_E_BOUNDS. */
static inline int32_t plaza_output(const char *json, size_t len) {
    return plaza_output_write(json, (int32_t)len);
}

/* plaza_output for a NUL-terminated string. */
static inline int32_t plaza_output_str(const char *json) {
    return plaza_output(json, strlen(json));
}

/* Appends one line (NUL-terminated, no newline needed) to the call's log. 0 or PLAZA_E_LIMIT. */
static inline int32_t plaza_log(const char *msg) {
    return plaza_log_write(msg, (int32_t)strlen(msg));
}

/* Reads the value stored under `key` into buf[0 .. cap). Returns the value's length; if that is
 * > cap nothing was copied (call again with a buffer that big). PLAZA_E_NOT_FOUND if not stored. */
static inline int32_t plaza_kv_get(const char *key, void *buf, size_t cap) {
    return plaza_kv_get_raw(key, (int32_t)strlen(key), buf, (int32_t)cap);
}

/* Stores val[0 .. len) under `key`. 0, PLAZA_E_TOO_LARGE, PLAZA_E_QUOTA, ... */
static inline int32_t plaza_kv_set(const char *key, const void *val, size_t len) {
    return plaza_kv_set_raw(key, (int32_t)strlen(key), val, (int32_t)len);
}

/* Removes `key`. 0 or PLAZA_E_NOT_FOUND. */
static inline int32_t plaza_kv_delete(const char *key) {
    return plaza_kv_delete_raw(key, (int32_t)strlen(key));
}

/* Queues an event of `type` with a JSON object payload (NUL-terminated). Released only if the
 * call ends ok. 0, PLAZA_E_DENIED (type not granted), PLAZA_E_INVALID, PLAZA_E_LIMIT, ... */
static inline int32_t plaza_emit(const char *type, const char *json) {
    return plaza_emit_event(type, (int32_t)strlen(type), json, (int32_t)strlen(json));
}

#endif /* PLAZA_H */
