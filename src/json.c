/* json.c: JSON text, both ways, for the safetensors header of model files. Writing: a growable text
 * buffer and the string escaper (with the size it will write, so save can check limits before building
 * anything). Reading: strict tokens for untrusted bytes (strings decoded and checked, surrogate pairs
 * joined, NUL refused; integers without sign, leading zeros or more than 2^53), on which safetensors.c
 * reads its fixed shape of document without recursion. Also the UTF-8 check and the C-locale switch
 * for numbers, which both directions need. It knows nothing of tensors or models. */
#define _POSIX_C_SOURCE 200809L
#include "modelfile_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* uselocale() switches this thread only */
void mg__c_numbers_begin(mg__c_numbers *l) {
    l->c = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
    l->previous = l->c ? uselocale(l->c) : (locale_t)0;
}

void mg__c_numbers_end(mg__c_numbers *l) {
    if (!l->c) return;
    uselocale(l->previous);
    freelocale(l->c);
}

/* ---- writing ---- */

/* Room for `need` more bytes and the NUL (doubling, so appending stays linear); 0 and t->failed if none. */
static int reserve(mg__json_text *t, size_t need) {
    if (t->data && t->size + need < t->capacity) return 1;
    size_t capacity = (t->size + need + 1) * 2;
    char *grown = mg__realloc(t->data, t->capacity, capacity);
    if (!grown) {
        t->failed = 1;
        return 0;
    }
    t->data = grown;
    t->capacity = capacity;
    return 1;
}

void mg__json_add(mg__json_text *t, const char *fmt, ...) {
    if (t->failed) return;
    for (;;) {
        va_list args;
        va_start(args, fmt);
        int n = vsnprintf(t->data ? t->data + t->size : NULL, t->data ? t->capacity - t->size : 0, fmt, args);
        va_end(args);
        if (n < 0) {
            t->failed = 1;
            return;
        }
        if (t->data && t->size + (size_t)n < t->capacity) {
            t->size += (size_t)n;
            return;
        }
        if (!reserve(t, (size_t)n)) return;
    }
}

/* n bytes as they are (no printf: metadata may be megabytes) */
static void add_bytes(mg__json_text *t, const char *s, size_t n) {
    if (t->failed || n == 0 || !reserve(t, n)) return;
    memcpy(t->data + t->size, s, n);
    t->size += n;
    t->data[t->size] = '\0';
}

/* runs of plain bytes copied at once */
void mg__json_add_string(mg__json_text *t, const char *s) {
    mg__json_add(t, "\"");
    while (*s) {
        size_t plain = 0;
        while (s[plain] && s[plain] != '"' && s[plain] != '\\' && (unsigned char)s[plain] >= 0x20) plain++;
        add_bytes(t, s, plain);
        s += plain;
        if (!*s) break;
        unsigned char c = (unsigned char)*s++;
        if (c == '"' || c == '\\') mg__json_add(t, "\\%c", c);
        else mg__json_add(t, "\\u%04x", c);
    }
    mg__json_add(t, "\"");
}

uint64_t mg__json_string_size(const char *s) {
    uint64_t n = 3;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        n += c == '"' || c == '\\' ? 2 : c < 0x20 ? 6 : 1;
    }
    return n;
}

void mg__json_text_free(mg__json_text *t) {
    mg__free(t->data, t->capacity);
    t->data = NULL;
    t->size = t->capacity = 0;
}

/* safetensors headers must be UTF-8: the loader checks the whole header, save each metadata string */
int mg__utf8_valid(const unsigned char *s, size_t n) {
    for (size_t i = 0; i < n;) {
        unsigned char c = s[i];
        size_t len = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
        if (len == 0 || n - i < len) return 0;
        uint32_t cp = len == 1 ? c : len == 2 ? c & 0x1Fu : len == 3 ? c & 0x0Fu : c & 0x07u;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80) return 0;
            cp = cp << 6 | (s[i + k] & 0x3Fu);
        }
        static const uint32_t smallest[] = {0, 0, 0x80, 0x800, 0x10000};
        if (cp < smallest[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp < 0xE000)) return 0;
        i += len;
    }
    return 1;
}

/* ---- reading ---- */

void mg__json_skip_space(mg__json_reader *r) {
    while (r->p < r->end && (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r')) r->p++;
}

int mg__json_expect(mg__json_reader *r, char c) {
    mg__json_skip_space(r);
    if (r->p < r->end && *r->p == c) {
        r->p++;
        return 1;
    }
    if (!r->error) r->error = "malformed JSON header";
    return 0;
}

int mg__json_peek(mg__json_reader *r, char c) {
    mg__json_skip_space(r);
    return r->p < r->end && *r->p == c;
}

static void utf8_put(char *out, size_t *n, uint32_t cp) {
    if (cp < 0x80) out[(*n)++] = (char)cp;
    else if (cp < 0x800) out[(*n)++] = (char)(0xC0 | cp >> 6), out[(*n)++] = (char)(0x80 | (cp & 0x3F));
    else if (cp < 0x10000)
        out[(*n)++] = (char)(0xE0 | cp >> 12), out[(*n)++] = (char)(0x80 | ((cp >> 6) & 0x3F)),
        out[(*n)++] = (char)(0x80 | (cp & 0x3F));
    else
        out[(*n)++] = (char)(0xF0 | cp >> 18), out[(*n)++] = (char)(0x80 | ((cp >> 12) & 0x3F)),
        out[(*n)++] = (char)(0x80 | ((cp >> 6) & 0x3F)), out[(*n)++] = (char)(0x80 | (cp & 0x3F));
}

static int hex4(const char *p, uint32_t *out) {
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        v <<= 4;
        if (c >= '0' && c <= '9') v |= (uint32_t)(c - '0');
        else if (c >= 'a' && c <= 'f') v |= (uint32_t)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') v |= (uint32_t)(c - 'A' + 10);
        else return 0;
    }
    *out = v;
    return 1;
}

/* A JSON string, decoded into a new NUL-terminated buffer (the decoded form is never longer). */
char *mg__json_read_string(mg__json_reader *r) {
    if (!mg__json_expect(r, '"')) return NULL;
    const char *start = r->p;
    while (r->p < r->end && *r->p != '"') r->p += *r->p == '\\' ? 2 : 1;
    if (r->p >= r->end) {
        if (!r->error) r->error = "unterminated string in the JSON header";
        return NULL;
    }
    size_t raw = (size_t)(r->p - start), n = 0;
    r->p++;
    char *out = mg__alloc(raw + 1);
    if (!out) {
        if (!r->error) r->error = "out of memory reading the header";
        return NULL;
    }
    for (const char *p = start; p < start + raw; p++) {
        unsigned char c = (unsigned char)*p;
        if (c < 0x20) goto bad;
        if (c != '\\') {
            out[n++] = (char)c;
            continue;
        }
        switch (*++p) {
        case '"': out[n++] = '"'; break;
        case '\\': out[n++] = '\\'; break;
        case '/': out[n++] = '/'; break;
        case 'b': out[n++] = '\b'; break;
        case 'f': out[n++] = '\f'; break;
        case 'n': out[n++] = '\n'; break;
        case 'r': out[n++] = '\r'; break;
        case 't': out[n++] = '\t'; break;
        case 'u': {
            uint32_t cp, low;
            if (start + raw - p < 5 || !hex4(p + 1, &cp)) goto bad;
            p += 4;
            if (cp >= 0xD800 && cp < 0xDC00) { /* a surrogate pair: \uD83D\uDE00 */
                if (start + raw - p < 7 || p[1] != '\\' || p[2] != 'u' || !hex4(p + 3, &low) || low < 0xDC00 ||
                    low >= 0xE000)
                    goto bad;
                cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
                p += 6;
            } else if (cp >= 0xDC00 && cp < 0xE000) {
                goto bad;
            }
            if (cp == 0) goto bad; /* a NUL would cut the C string short */
            utf8_put(out, &n, cp);
            break;
        }
        default: goto bad;
        }
    }
    out[n] = '\0';
    return out;
bad:
    mg__free(out, raw + 1);
    if (!r->error) r->error = "bad string in the JSON header";
    return NULL;
}

void mg__json_free_string(char *s) {
    if (s) mg__free(s, strlen(s) + 1);
}

/* A non-negative integer that fits in 2^53, as JSON writers can represent exactly. */
int mg__json_read_uint(mg__json_reader *r, uint64_t *out) {
    mg__json_skip_space(r);
    uint64_t v = 0;
    const char *start = r->p;
    while (r->p < r->end && *r->p >= '0' && *r->p <= '9') {
        v = v * 10 + (uint64_t)(*r->p - '0');
        if (v > ((uint64_t)1 << 53)) {
            if (!r->error) r->error = "a number in the header is too large";
            return 0;
        }
        r->p++;
    }
    if (r->p == start || (r->p - start > 1 && *start == '0')) {
        if (!r->error) r->error = "expected a non-negative integer in the header";
        return 0;
    }
    *out = v;
    return 1;
}
