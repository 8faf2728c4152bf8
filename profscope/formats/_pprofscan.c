/* pprof's tables (samples, mappings, locations, functions) read into columns in one pass.

   The compiled twin of pprof_scan.py's numpy reading: same columns, same coverage rule. Anything
   it does not cover (a wire type these messages never use, a group, a value cut short, a length
   running past its message, a scalar field written as a length-delimited one) makes it return
   None, and the caller falls back to the numpy reading and then to protobuf message by message,
   which also words the error. The header (string table, sample types, times) is read by upb.

   Input is untrusted: every read is bounds-checked against the end of the enclosing message, and
   the output columns grow by doubling, each at most 8 bytes per input byte. The GIL is released
   while reading (the input is an immutable bytes object). */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum {
    MAP_IDS, MAP_FILE,
    FN_IDS, FN_NAME, FN_SYS, FN_FILE, FN_START,
    LOC_IDS, LOC_MAP, LOC_ADDR, NLINES, LINE_FN, LINE_NO,
    SLENS, SLOC, VLENS, VALUES,
    LAB_SAMPLE, LAB_KEY, LAB_STR, LAB_NUM, LAB_UNIT,
    NCOLS
};

typedef struct {
    uint64_t *v;
    size_t n, cap;
} Col;

typedef struct {
    Col c[NCOLS];
    int oom;
} Out;

#define BAD (-1)   /* not covered: fall back */
#define OOM (-2)

static int push(Out *o, int k, uint64_t x) {
    Col *c = &o->c[k];
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 64;
        uint64_t *v = realloc(c->v, cap * sizeof(uint64_t));
        if (!v) {
            o->oom = 1;
            return OOM;
        }
        c->v = v;
        c->cap = cap;
    }
    c->v[c->n++] = x;
    return 0;
}

/* A varint of at most 10 bytes, bits past 64 dropped (as upb reads them). */
static inline int varint(const uint8_t **pp, const uint8_t *end, uint64_t *out) {
    const uint8_t *p = *pp;
    uint64_t v = 0;
    for (int i = 0; i < 10; i++) {
        if (p >= end)
            return BAD;
        uint8_t b = *p++;
        v |= (uint64_t)(b & 0x7f) << (7 * i);
        if (!(b & 0x80)) {
            *pp = p;
            *out = v;
            return 0;
        }
    }
    return BAD;
}

/* A field's tag: field number (1 .. 2^29-1) and wire type. */
static inline int tag(const uint8_t **pp, const uint8_t *end, uint32_t *num, int *wt) {
    uint64_t t;
    if (varint(pp, end, &t))
        return BAD;
    if ((t >> 3) == 0 || (t >> 3) > 0x1fffffff)
        return BAD;
    *num = (uint32_t)(t >> 3);
    *wt = (int)(t & 7);
    return 0;
}

/* The payload of a length-delimited field: [*pp, *sub_end). */
static inline int payload(const uint8_t **pp, const uint8_t *end, const uint8_t **sub_end) {
    uint64_t len;
    if (varint(pp, end, &len))
        return BAD;
    if (len > (uint64_t)(end - *pp))
        return BAD;
    *sub_end = *pp + len;
    return 0;
}

/* Skip an unread field: only the wire types pprof's messages use (varint, length-delimited). */
static inline int skip(const uint8_t **pp, const uint8_t *end, int wt) {
    uint64_t x;
    const uint8_t *e;
    if (wt == 0)
        return varint(pp, end, &x);
    if (wt == 2) {
        if (payload(pp, end, &e))
            return BAD;
        *pp = e;
        return 0;
    }
    return BAD;
}

/* Reads a sub-message [p, end) whose owner (location, sample) has index `owner`. */
typedef int (*nested_fn)(Out *, const uint8_t *, const uint8_t *, uint64_t);

/* A length-delimited sub-message handed to fn (with its owner's index); *pp moves past it. */
static int nested_msg(Out *o, const uint8_t **pp, const uint8_t *end, int wt, nested_fn fn, uint64_t owner) {
    const uint8_t *e;
    int r;
    if (wt != 2 || payload(pp, end, &e))
        return BAD;
    if ((r = fn(o, *pp, e, owner)))
        return r;
    *pp = e;
    return 0;
}

/* Reads the scalar (wire type 0) fields 1..n of one message into vals (0 when absent, the last
   occurrence wins); field `nested` (if > 0) must be length-delimited and is handed to
   `on_nested`. Other fields are skipped. */
static int scalars(Out *o, const uint8_t *p, const uint8_t *end, uint64_t *vals, int n, uint32_t nested,
                   nested_fn on_nested, uint64_t owner) {
    memset(vals, 0, sizeof(uint64_t) * (size_t)n);
    while (p < end) {
        uint32_t num;
        int wt, r;
        if (tag(&p, end, &num, &wt))
            return BAD;
        if (num >= 1 && num <= (uint32_t)n) {
            if (wt != 0 || varint(&p, end, &vals[num - 1]))
                return BAD;
        } else if (nested && num == nested) {
            if ((r = nested_msg(o, &p, end, wt, on_nested, owner)))
                return r;
        } else if (skip(&p, end, wt)) {
            return BAD;
        }
    }
    return 0;
}

/* One message's scalar fields 1..n, field k's value appended to column cols[k-1] (none: -1). */
static int record(Out *o, const uint8_t *p, const uint8_t *end, int n, const int *cols) {
    uint64_t v[5];
    int r = scalars(o, p, end, v, n, 0, NULL, 0);
    if (r)
        return r;
    for (int k = 0; k < n; k++)
        if (cols[k] >= 0 && push(o, cols[k], v[k]))
            return OOM;
    return 0;
}

static const int MAPPING_COLS[5] = {MAP_IDS, -1, -1, -1, MAP_FILE};
static const int FUNCTION_COLS[5] = {FN_IDS, FN_NAME, FN_SYS, FN_FILE, FN_START};
static const int LINE_COLS[2] = {LINE_FN, LINE_NO};
static const int LABEL_COLS[4] = {LAB_KEY, LAB_STR, LAB_NUM, LAB_UNIT};

static int line(Out *o, const uint8_t *p, const uint8_t *end, uint64_t loc) {
    o->c[NLINES].v[loc]++;
    return record(o, p, end, 2, LINE_COLS);
}

static int label(Out *o, const uint8_t *p, const uint8_t *end, uint64_t sample) {
    if (push(o, LAB_SAMPLE, sample))
        return OOM;
    return record(o, p, end, 4, LABEL_COLS);
}

static int location(Out *o, const uint8_t *p, const uint8_t *end) {
    uint64_t v[3];
    uint64_t loc = o->c[NLINES].n;
    if (push(o, NLINES, 0))                 /* counted up by line() */
        return OOM;
    int r = scalars(o, p, end, v, 3, 4, line, loc);
    if (r)
        return r;
    return (push(o, LOC_IDS, v[0]) || push(o, LOC_MAP, v[1]) || push(o, LOC_ADDR, v[2])) ? OOM : 0;
}

/* Sample: location_id (1) and value (2) packed or not, label (3) nested. */
static int sample(Out *o, const uint8_t *p, const uint8_t *end) {
    uint64_t s = o->c[SLENS].n, count[2] = {0, 0};
    while (p < end) {
        uint32_t num;
        int wt, r;
        if (tag(&p, end, &num, &wt))
            return BAD;
        if (num == 1 || num == 2) {
            int k = num == 1 ? SLOC : VALUES;
            uint64_t x;
            if (wt == 0) {
                if (varint(&p, end, &x))
                    return BAD;
                if (push(o, k, x))
                    return OOM;
                count[num - 1]++;
            } else if (wt == 2) {
                const uint8_t *e;
                if (payload(&p, end, &e))
                    return BAD;
                while (p < e) {
                    if (varint(&p, e, &x))
                        return BAD;
                    if (push(o, k, x))
                        return OOM;
                    count[num - 1]++;
                }
            } else {
                return BAD;
            }
        } else if (num == 3) {
            if ((r = nested_msg(o, &p, end, wt, label, s)))
                return r;
        } else if (skip(&p, end, wt)) {
            return BAD;
        }
    }
    return (push(o, SLENS, count[0]) || push(o, VLENS, count[1])) ? OOM : 0;
}

/* The whole Profile: fields 2-5 are the tables, the rest is the header (read by upb). */
static int profile(Out *o, const uint8_t *p, const uint8_t *end) {
    while (p < end) {
        uint32_t num;
        int wt, r = 0;
        if (tag(&p, end, &num, &wt))
            return BAD;
        if (num >= 2 && num <= 5) {
            const uint8_t *e;
            if (wt != 2 || payload(&p, end, &e))
                return BAD;
            switch (num) {
            case 2: r = sample(o, p, e); break;
            case 3: r = record(o, p, e, 5, MAPPING_COLS); break;
            case 4: r = location(o, p, e); break;
            default: r = record(o, p, e, 5, FUNCTION_COLS); break;
            }
            if (r)
                return r;
            p = e;
        } else if (wt == 1 || wt == 5) {    /* not in pprof, but valid protobuf: upb reads the header */
            size_t w = wt == 1 ? 8 : 4;
            if ((size_t)(end - p) < w)
                return BAD;
            p += w;
        } else if (skip(&p, end, wt)) {
            return BAD;
        }
    }
    return 0;
}

static void release(Out *o) {
    for (int k = 0; k < NCOLS; k++)
        free(o->c[k].v);
}

PyDoc_STRVAR(scan_doc,
"scan(raw: bytes) -> tuple[bytearray, ...] | None\n\n"
"The 22 columns of an uncompressed pprof's tables as little-endian 8-byte integers, in the order\n"
"map_ids, map_file, fn_ids, fn_name, fn_sys, fn_file, fn_start, loc_ids, loc_map, loc_addr,\n"
"nlines, line_fn, line_no, slens, sloc, vlens, values, and the label rows' sample, key, str,\n"
"num, unit; None when the bytes use an encoding this reading does not cover.");

static PyObject *scan(PyObject *self, PyObject *arg) {
    (void)self;
    if (!PyBytes_Check(arg)) {
        PyErr_SetString(PyExc_TypeError, "scan() takes bytes");
        return NULL;
    }
    const uint8_t *p = (const uint8_t *)PyBytes_AS_STRING(arg);
    Py_ssize_t n = PyBytes_GET_SIZE(arg);
    Out o;
    memset(&o, 0, sizeof o);
    int r;
    Py_BEGIN_ALLOW_THREADS
    r = profile(&o, p, p + n);
    Py_END_ALLOW_THREADS
    if (r) {
        release(&o);
        if (r == OOM)
            return PyErr_NoMemory();
        Py_RETURN_NONE;
    }
    PyObject *out = PyTuple_New(NCOLS);
    if (!out) {
        release(&o);
        return NULL;
    }
    for (int k = 0; k < NCOLS; k++) {
        PyObject *col = PyByteArray_FromStringAndSize((const char *)o.c[k].v,
                                                      (Py_ssize_t)(o.c[k].n * sizeof(uint64_t)));
        if (!col) {
            Py_DECREF(out);
            release(&o);
            return NULL;
        }
        PyTuple_SET_ITEM(out, k, col);
    }
    release(&o);
    return out;
}

static PyMethodDef methods[] = {
    {"scan", scan, METH_O, scan_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_pprofscan",
    "pprof's tables read into columns in one compiled pass (see pprof_scan.py).", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__pprofscan(void) {
    return PyModule_Create(&module);
}
