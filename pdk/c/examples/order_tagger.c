/* order_tagger.c: tags an order.created event (apps/events/catalog/order.created.json).
 *
 * Hook: on_order_created. Scopes: kv:write (it keeps a count of the orders it has seen).
 * Input:  the order.created payload, e.g. {"order_id":"ord_1001",...,"line_items":[{"sku":...}]}
 * Output: {"tags":["items:1","quantity:2","currency:EUR"],"orders_seen":1}
 *         plus a "bulk" tag when the quantities add up to 10 or more.
 * Log:    "order_tagger: ord_1001 has 1 line item(s), quantity 2"
 *
 * There is no JSON parser here. It relies on what the ABI promises about the input: compact JSON
 * (no spaces) with every quote inside a string escaped, so the byte sequence "sku": can only be a
 * key (strictly: unless a key itself ends in an escaped quote followed by sku). Good enough for
 * a fixture; a real extension would use a JSON library.
 *
 * Build: pdk/c/build.sh pdk/c/examples/order_tagger.c order_tagger.wasm
 */
#include "../plaza.h"

#define COUNTER_KEY "orders_seen"

/* A small append-only string buffer on the stack: enough for the output and the log line. */
typedef struct {
    char buf[512];
    size_t len;
} text;

static void put(text *t, const char *s, size_t n) {
    if (t->len + n >= sizeof t->buf) n = sizeof t->buf - 1 - t->len; /* cut, never overflow */
    memcpy(t->buf + t->len, s, n);
    t->len += n;
    t->buf[t->len] = '\0';
}

static void puts_(text *t, const char *s) { put(t, s, strlen(s)); }

static void putu(text *t, unsigned long v) {
    char digits[24];
    size_t i = sizeof digits;
    do {
        digits[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    put(t, digits + i, sizeof digits - i);
}

/* The raw bytes of the string value after `"key":"` (no unescaping), or NULL. */
static const char *string_field(const char *json, const char *pattern, size_t *len) {
    const char *at = strstr(json, pattern);
    if (at == NULL) return NULL;
    at += strlen(pattern);
    const char *end = at;
    while (*end && !(*end == '"' && end[-1] != '\\')) end++;
    *len = (size_t)(end - at);
    return at;
}

/* Number of line items and the sum of their quantities. */
static void scan_line_items(const char *json, unsigned long *items, unsigned long *quantity) {
    *items = 0;
    *quantity = 0;
    for (const char *p = json; (p = strstr(p, "\"sku\":")) != NULL; p++) (*items)++;
    for (const char *p = json; (p = strstr(p, "\"quantity\":")) != NULL;) {
        p += strlen("\"quantity\":");
        unsigned long q = 0;
        while (*p >= '0' && *p <= '9') q = q * 10 + (unsigned long)(*p++ - '0');
        *quantity += q;
    }
}

/* Increments the counter in KV storage (a decimal string); returns the new value, or 0 if the
 * store refused. */
static unsigned long bump_counter(void) {
    char stored[24];
    unsigned long n = 0;
    int32_t len = plaza_kv_get(COUNTER_KEY, stored, sizeof stored);
    for (int32_t i = 0; i >= 0 && i < len && len <= (int32_t)sizeof stored; i++) n = n * 10 + (stored[i] - '0');
    n++;
    text value = {.len = 0};
    putu(&value, n);
    return plaza_kv_set(COUNTER_KEY, value.buf, value.len) == 0 ? n : 0;
}

PLAZA_HOOK(on_order_created) {
    size_t input_len;
    char *input = plaza_input(&input_len);
    if (input == NULL) return 1;
    if (input_len == 0) {
        plaza_log("order_tagger: no input");
        free(input);
        return 2;
    }

    unsigned long items, quantity;
    scan_line_items(input, &items, &quantity);
    size_t id_len = 0, currency_len = 0;
    const char *id = string_field(input, "\"order_id\":\"", &id_len);
    const char *currency = string_field(input, "\"currency\":\"", &currency_len);

    text line = {.len = 0};
    puts_(&line, "order_tagger: ");
    if (id) put(&line, id, id_len);
    puts_(&line, " has ");
    putu(&line, items);
    puts_(&line, " line item(s), quantity ");
    putu(&line, quantity);
    plaza_log(line.buf);

    unsigned long seen = bump_counter();
    if (seen == 0) {
        free(input);
        return 3;
    }

    text out = {.len = 0};
    puts_(&out, "{\"tags\":[\"items:");
    putu(&out, items);
    puts_(&out, "\",\"quantity:");
    putu(&out, quantity);
    puts_(&out, "\"");
    if (currency) {
        puts_(&out, ",\"currency:");
        put(&out, currency, currency_len);
        puts_(&out, "\"");
    }
    if (quantity >= 10) puts_(&out, ",\"bulk\"");
    puts_(&out, "],\"orders_seen\":");
    putu(&out, seen);
    puts_(&out, "}");
    free(input);
    return plaza_output(out.buf, out.len) == 0 ? 0 : 4;
}
