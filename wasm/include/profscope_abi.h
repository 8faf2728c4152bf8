/*
 * profscope_abi.h - write a profscope analyzer (ABI v1) in freestanding C.
 *
 * Build:  clang --target=wasm32 -O2 -ffreestanding -nostdlib -mbulk-memory \
 *               -Wl,--no-entry -Wl,--strip-all -I wasm/include plugin.c -o plugin.core.wasm
 *         python3 wasm/tools/pack_manifest.py plugin.core.wasm manifest.json -o plugin.wasm
 *
 * A plugin file:
 *
 *     #include "profscope_abi.h"
 *     PSP_DEFINE_ABI()                     // exports profscope_abi_v1 and psp_alloc
 *     PSP_EXPORT(psp_analyze) int64_t psp_analyze(int32_t ptr, int32_t len) {
 *         psf1_view v;
 *         const char *err = psf1_open(&v, ptr, len);
 *         if (err) return psp_error(err);
 *         ...  walk v.parent / v.name / v.self / v.total ...
 *         return psp_out_finish(&out);     // (out_len << 32) | out_ptr
 *     }
 *
 * Memory comes from a bump allocator over the linear memory above __heap_base; nothing is
 * ever freed (the host gives every run a fresh instance). Everything here is static inline:
 * include the header in ONE translation unit.
 */
#ifndef PROFSCOPE_ABI_H
#define PROFSCOPE_ABI_H

#include <stddef.h>
#include <stdint.h>

#define PSP_ABI_VERSION 1
#define PSP_EXPORT(name) __attribute__((export_name(#name)))
#define PSP_IMPORT(mod, name) __attribute__((import_module(mod), import_name(name)))

/* ------------------------------------------------------------------ host import */
enum { PSP_DEBUG = 0, PSP_INFO = 1, PSP_WARN = 2, PSP_ERROR = 3 };

/* profscope.log(level, ptr, len): the only import a plugin may have. The host copies at
 * most 4 KiB per call and keeps at most 100 lines per run; it never fails. The import only
 * appears in the module when the plugin calls it. */
PSP_IMPORT("profscope", "log") void psp_log_raw(int32_t level, const char *ptr, int32_t len);

static inline uint32_t psp_strlen(const char *s) {
    uint32_t n = 0;
    while (s[n]) n++;
    return n;
}

static inline void psp_log(int32_t level, const char *msg) {
    psp_log_raw(level, msg, (int32_t)psp_strlen(msg));
}

/* ------------------------------------------------------------------ bump allocator */
extern unsigned char __heap_base;
static uint32_t psp__bump;

/* 8-byte aligned, zero-filled on first use of fresh pages; 0 when memory cannot grow. */
static inline void *psp_alloc_bytes(uint32_t size) {
    if (!psp__bump) psp__bump = ((uint32_t)(uintptr_t)&__heap_base + 7u) & ~7u;
    uint64_t end = ((uint64_t)psp__bump + size + 7u) & ~(uint64_t)7u;
    if (end > 0xFFFFFFF8u) return 0;
    uint64_t have = (uint64_t)__builtin_wasm_memory_size(0) * 65536u;
    if (end > have) {
        uint64_t pages = (end - have + 65535u) / 65536u;
        if (__builtin_wasm_memory_grow(0, (size_t)pages) == (size_t)-1) return 0;
    }
    void *p = (void *)(uintptr_t)psp__bump;
    psp__bump = (uint32_t)end;
    return p;
}

/* Defines the marker export and psp_alloc on top of the bump allocator. */
#define PSP_DEFINE_ABI()                                                          \
    PSP_EXPORT(profscope_abi_v1) void profscope_abi_v1(void) {}                   \
    PSP_EXPORT(psp_alloc) int32_t psp_alloc(int32_t size) {                       \
        return (int32_t)(uintptr_t)psp_alloc_bytes((uint32_t)size);               \
    }

/* ------------------------------------------------------------------ PSF1 input */
typedef struct {
    char magic[4];            /* "PSF1" */
    uint32_t version;         /* 1 */
    uint32_t flags;           /* bit 0: diff (base_* columns hold the baseline) */
    uint32_t n_nodes, n_names;
    uint32_t off_parent;      /* u32[n_nodes]; 0xFFFFFFFF for the root (node 0) */
    uint32_t off_name;        /* u32[n_nodes]; index into the name table */
    uint32_t off_self, off_total, off_base_self, off_base_total;   /* i64[n_nodes] */
    uint32_t off_stroff;      /* u32[n_names + 1]; byte offsets into the string data */
    uint32_t off_strdata;     /* UTF-8, not NUL-terminated */
    uint32_t off_meta, meta_len;   /* UTF-8 JSON */
    uint32_t total_len;
} psf1_header;

_Static_assert(sizeof(psf1_header) == 64, "PSF1 header is 64 bytes");

#define PSF1_FLAG_DIFF 1u
#define PSF1_NO_PARENT 0xFFFFFFFFu

typedef struct {
    const psf1_header *h;
    uint32_t n_nodes, n_names;
    int diff;
    const uint32_t *parent, *name, *stroff;
    const int64_t *self, *total, *base_self, *base_total;
    const char *strdata, *meta;
    uint32_t meta_len;
} psf1_view;

static inline int psf1__in(uint32_t off, uint64_t size, uint32_t len, uint32_t align) {
    return (off % align) == 0 && (uint64_t)off + size <= len;
}

/* Fills *v from the input buffer; returns NULL, or a message saying what is wrong. */
static inline const char *psf1_open(psf1_view *v, int32_t ptr, int32_t len_) {
    const uint8_t *b = (const uint8_t *)(uintptr_t)(uint32_t)ptr;
    uint32_t len = (uint32_t)len_;
    const psf1_header *h = (const psf1_header *)b;
    if (len < sizeof(psf1_header)) return "input shorter than the PSF1 header";
    if (h->magic[0] != 'P' || h->magic[1] != 'S' || h->magic[2] != 'F' || h->magic[3] != '1')
        return "input is not PSF1 (bad magic)";
    if (h->version != 1) return "unsupported PSF1 version";
    if (h->total_len != len) return "PSF1 total_len does not match the input length";
    uint64_t n = h->n_nodes, m = h->n_names;
    if (!psf1__in(h->off_parent, 4 * n, len, 8) || !psf1__in(h->off_name, 4 * n, len, 8) ||
        !psf1__in(h->off_self, 8 * n, len, 8) || !psf1__in(h->off_total, 8 * n, len, 8) ||
        !psf1__in(h->off_base_self, 8 * n, len, 8) || !psf1__in(h->off_base_total, 8 * n, len, 8) ||
        !psf1__in(h->off_stroff, 4 * (m + 1), len, 8) || !psf1__in(h->off_meta, h->meta_len, len, 1))
        return "PSF1 array out of bounds or misaligned";
    v->h = h;
    v->n_nodes = h->n_nodes;
    v->n_names = h->n_names;
    v->diff = (h->flags & PSF1_FLAG_DIFF) != 0;
    v->parent = (const uint32_t *)(b + h->off_parent);
    v->name = (const uint32_t *)(b + h->off_name);
    v->self = (const int64_t *)(b + h->off_self);
    v->total = (const int64_t *)(b + h->off_total);
    v->base_self = (const int64_t *)(b + h->off_base_self);
    v->base_total = (const int64_t *)(b + h->off_base_total);
    v->stroff = (const uint32_t *)(b + h->off_stroff);
    v->strdata = (const char *)(b + h->off_strdata);
    v->meta = (const char *)(b + h->off_meta);
    v->meta_len = h->meta_len;
    if (!psf1__in(h->off_strdata, v->stroff[m], len, 1)) return "PSF1 string data out of bounds";
    return 0;
}

/* Name number idx (UTF-8, not NUL-terminated); *len receives its byte length. */
static inline const char *psf1_name(const psf1_view *v, uint32_t idx, uint32_t *len) {
    if (idx >= v->n_names) { *len = 0; return ""; }
    *len = v->stroff[idx + 1] - v->stroff[idx];
    return v->strdata + v->stroff[idx];
}

/* ------------------------------------------------------------------ metadata lookups */
/* These scan the metadata JSON for the first "key": and are meant for the flat config keys
 * of one plugin (a key name that also appears as a value elsewhere would confuse them). */
static inline const char *psp__meta_value(const psf1_view *v, const char *key) {
    uint32_t k = psp_strlen(key), n = v->meta_len;
    const char *s = v->meta;
    for (uint32_t i = 0; i + k + 2 <= n; i++) {
        if (s[i] != '"' || s[i + k + 1] != '"') continue;
        uint32_t j = 0;
        while (j < k && s[i + 1 + j] == key[j]) j++;
        if (j < k) continue;
        uint32_t p = i + k + 2;
        while (p < n && (s[p] == ' ' || s[p] == '\n' || s[p] == '\t' || s[p] == '\r')) p++;
        if (p >= n || s[p] != ':') continue;
        p++;
        while (p < n && (s[p] == ' ' || s[p] == '\n' || s[p] == '\t' || s[p] == '\r')) p++;
        return p < n ? s + p : 0;
    }
    return 0;
}

/* A number-valued key, or dflt when absent or not a number. */
static inline double psp_meta_number(const psf1_view *v, const char *key, double dflt) {
    const char *p = psp__meta_value(v, key), *end = v->meta + v->meta_len;
    if (!p) return dflt;
    double sign = 1, x = 0, scale = 1;
    int digits = 0;
    if (p < end && *p == '-') { sign = -1; p++; }
    while (p < end && *p >= '0' && *p <= '9') { x = x * 10 + (*p++ - '0'); digits++; }
    if (p < end && *p == '.') {
        p++;
        while (p < end && *p >= '0' && *p <= '9') { scale /= 10; x += (*p++ - '0') * scale; digits++; }
    }
    if (!digits) return dflt;
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        int esign = 1, e = 0;
        if (p < end && (*p == '+' || *p == '-')) esign = (*p++ == '-') ? -1 : 1;
        while (p < end && *p >= '0' && *p <= '9' && e < 400) e = e * 10 + (*p++ - '0');
        while (e-- > 0) x = esign > 0 ? x * 10 : x / 10;
    }
    return sign * x;
}

/* A string-valued key: pointer to its still-JSON-escaped bytes (no quotes), or 0. */
static inline const char *psp_meta_string(const psf1_view *v, const char *key, uint32_t *len) {
    const char *p = psp__meta_value(v, key), *end = v->meta + v->meta_len;
    if (!p || *p != '"') return 0;
    const char *q = ++p;
    while (q < end && *q != '"') q += (*q == '\\') ? 2 : 1;
    if (q >= end) return 0;
    *len = (uint32_t)(q - p);
    return p;
}

/* ------------------------------------------------------------------ JSON output */
/* A fixed-capacity output buffer: size it with an upper bound before writing. Writing past
 * the capacity sets `failed` (psp_out_finish then reports an error instead of bad JSON). */
typedef struct {
    char *buf;
    uint32_t len, cap;
    int failed;
} psp_out;

static inline int psp_out_init(psp_out *o, uint32_t cap) {
    o->buf = (char *)psp_alloc_bytes(cap);
    o->len = 0;
    o->cap = o->buf ? cap : 0;
    o->failed = o->buf == 0;
    return !o->failed;
}

static inline void psp_out_raw(psp_out *o, const char *s, uint32_t n) {
    if (o->failed || n > o->cap - o->len) { o->failed = 1; return; }
    for (uint32_t i = 0; i < n; i++) o->buf[o->len + i] = s[i];
    o->len += n;
}

static inline void psp_out_str(psp_out *o, const char *s) { psp_out_raw(o, s, psp_strlen(s)); }

/* Bytes that the JSON string escaper may write for n input bytes (upper bound). */
#define PSP_JSON_ESCAPED_MAX(n) (6u * (n) + 2u)

/* s[0..n) as a JSON string with quotes; control characters become \u00XX. */
static inline void psp_out_json_str(psp_out *o, const char *s, uint32_t n) {
    static const char hex[] = "0123456789abcdef";
    psp_out_raw(o, "\"", 1);
    for (uint32_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};
            psp_out_raw(o, e, 2);
        } else if (c < 0x20) {
            char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            psp_out_raw(o, e, 6);
        } else {
            psp_out_raw(o, (const char *)&c, 1);
        }
    }
    psp_out_raw(o, "\"", 1);
}

static inline void psp_out_i64(psp_out *o, int64_t x) {
    char tmp[24];
    uint32_t n = 0;
    uint64_t u = x < 0 ? (uint64_t)0 - (uint64_t)x : (uint64_t)x;
    do { tmp[n++] = (char)('0' + u % 10); u /= 10; } while (u);
    if (x < 0) tmp[n++] = '-';
    char out[24];
    for (uint32_t i = 0; i < n; i++) out[i] = tmp[n - 1 - i];
    psp_out_raw(o, out, n);
}

/* x with `decimals` digits after the point (0..9), rounded half up; |x| < 9e18. */
static inline void psp_out_fixed(psp_out *o, double x, int decimals) {
    int64_t scale = 1;
    for (int i = 0; i < decimals; i++) scale *= 10;
    if (x < 0) { psp_out_raw(o, "-", 1); x = -x; }
    int64_t units = (int64_t)(x * (double)scale + 0.5);
    psp_out_i64(o, units / scale);
    if (decimals > 0) {
        char frac[10];
        int64_t f = units % scale;
        for (int i = decimals - 1; i >= 0; i--) { frac[i] = (char)('0' + f % 10); f /= 10; }
        psp_out_raw(o, ".", 1);
        psp_out_raw(o, frac, (uint32_t)decimals);
    }
}

static inline int64_t psp_result(const void *ptr, uint32_t len) {
    return ((int64_t)len << 32) | (int64_t)(uint32_t)(uintptr_t)ptr;
}

/* {"error": msg}; msg is a plain ASCII literal without quotes or backslashes. */
static inline int64_t psp_error(const char *msg) {
    psp_out o;
    if (!psp_out_init(&o, psp_strlen(msg) + 16)) return 0;
    psp_out_str(&o, "{\"error\":\"");
    psp_out_str(&o, msg);
    psp_out_str(&o, "\"}");
    return psp_result(o.buf, o.len);
}

static inline int64_t psp_out_finish(psp_out *o) {
    if (o->failed) return psp_error("output buffer too small");
    return psp_result(o->buf, o->len);
}

#endif /* PROFSCOPE_ABI_H */
