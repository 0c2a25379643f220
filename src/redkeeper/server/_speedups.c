/* redkeeper.server._speedups: the proxy's hot loops in C (optional; pure-Python fallbacks in
 * redkeeper/server/fastpath.py have the same contract and are tested against these).
 *
 *   route(buf, pos, commands, cache, index_of, max_argc, max_bulk, max_requests)
 *       -> (end, order, groups)
 *     Scans complete RESP multibulk requests from buf[pos:] while each is a single-key
 *     command of `commands` (name bytes -> info int, see fastpath.command_info) with a valid
 *     arity; its key's shard comes from the dict `cache` or else `index_of(key)`. Stops,
 *     without consuming it, at the first request that is anything else (incomplete,
 *     inline, malformed, over the limits, another command). `order` has one byte per request
 *     taken: the index of its group in `groups`, one per shard, a list of (code, payload,
 *     count) with code = shard * 2 + (1 if every request of the group only reads) and payload
 *     the group's raw requests concatenated in request order (one shard's requests keep their
 *     order: a read after a write to the same key must see it). At most 256 requests a call.
 *     `commands` must never change (the last name looked up is remembered per table).
 *
 *   frames(buf, pos, need) -> (count, end)
 *     Skips up to `need` complete RESP2/RESP3 reply frames from buf[pos:]; stops early at an
 *     incomplete frame or before an out-of-band push ('>'). ValueError on invalid RESP.
 *
 *   request_end(buf, pos) -> int
 *     The offset just past the complete multibulk request at buf[pos:], -1 when it is
 *     incomplete, -2 when it is not a well-formed multibulk request of bulk strings.
 *
 *   interleave(order, parts) -> bytes
 *     Request-order replies from per-group reply runs: for each byte g of `order`, the next
 *     frame of parts[g]. ValueError when the parts do not hold exactly those frames.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

#define INCOMPLETE (-1)
#define INVALID (-2)
#define MAX_GROUPS 255
#define MAX_RUN 256 /* requests one route call takes at most (bounded stack arrays) */

/* The last command name looked up, per table: most runs repeat one command. */
static PyObject *name_table = NULL; /* borrowed identity only, never dereferenced */
static char name_seen[32];
static Py_ssize_t name_len = -1;
static long name_info = 0;

/* A decimal integer (optional '-') at b[p..] ended by CRLF: the offset after the CRLF. */
static Py_ssize_t
line_int(const char *b, Py_ssize_t n, Py_ssize_t p, long long *out)
{
    Py_ssize_t i = p;
    int neg = 0, digits = 0;
    long long v = 0;
    if (i < n && b[i] == '-') {
        neg = 1;
        i++;
    }
    while (i < n && b[i] >= '0' && b[i] <= '9') {
        if (++digits > 18)
            return INVALID;
        v = v * 10 + (b[i] - '0');
        i++;
    }
    if (i >= n || (b[i] == '\r' && i + 1 >= n))
        return INCOMPLETE;
    if (b[i] != '\r' || b[i + 1] != '\n' || digits == 0)
        return INVALID;
    *out = neg ? -v : v;
    return i + 2;
}

/* The offset after the CRLF that ends the line starting at b[p] (p is past the type byte). */
static Py_ssize_t
line_end(const char *b, Py_ssize_t n, Py_ssize_t p)
{
    while (p < n) {
        const char *cr = memchr(b + p, '\r', (size_t)(n - p));
        if (cr == NULL)
            return INCOMPLETE;
        Py_ssize_t at = cr - b;
        if (at + 1 >= n)
            return INCOMPLETE;
        if (b[at + 1] == '\n')
            return at + 2;
        p = at + 1;
    }
    return INCOMPLETE;
}

/* The offset just past the complete reply frame at b[p] (an attribute with the reply it
 * annotates), INCOMPLETE, or INVALID. Mirrors resp.frame_end. */
static Py_ssize_t
frame_end(const char *b, Py_ssize_t n, Py_ssize_t p)
{
    long long remaining = 1, v;
    while (remaining) {
        if (p >= n)
            return INCOMPLETE;
        char kind = b[p];
        Py_ssize_t q;
        remaining--;
        switch (kind) {
        case '+': case '-': case ':': case '_': case '#': case ',': case '(':
            q = line_end(b, n, p + 1);
            if (q < 0)
                return q;
            p = q;
            break;
        case '$': case '!': case '=':
            q = line_int(b, n, p + 1, &v);
            if (q < 0)
                return q;
            if (v < 0) {
                if (v != -1 || kind != '$')
                    return INVALID;
                p = q;
            }
            else {
                if (q + v + 2 > n)
                    return INCOMPLETE;
                if (b[q + v] != '\r' || b[q + v + 1] != '\n')
                    return INVALID;
                p = q + v + 2;
            }
            break;
        case '*': case '~': case '>':
            q = line_int(b, n, p + 1, &v);
            if (q < 0)
                return q;
            if (v < -1)
                return INVALID;
            if (v > 0)
                remaining += v;
            p = q;
            break;
        case '%': case '|':
            q = line_int(b, n, p + 1, &v);
            if (q < 0)
                return q;
            if (v < 0)
                return INVALID;
            remaining += 2 * v + (kind == '|' ? 1 : 0);
            p = q;
            break;
        default:
            return INVALID;
        }
    }
    return p;
}

static PyObject *
frames(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    Py_buffer view;
    Py_ssize_t pos, need, count = 0;
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "frames(buf, pos, need)");
        return NULL;
    }
    pos = PyLong_AsSsize_t(args[1]);
    need = PyLong_AsSsize_t(args[2]);
    if ((pos == -1 || need == -1) && PyErr_Occurred())
        return NULL;
    if (PyObject_GetBuffer(args[0], &view, PyBUF_SIMPLE) < 0)
        return NULL;
    const char *b = view.buf;
    Py_ssize_t n = view.len;
    while (count < need && pos < n && b[pos] != '>') {
        Py_ssize_t end = frame_end(b, n, pos);
        if (end == INCOMPLETE)
            break;
        if (end == INVALID) {
            PyBuffer_Release(&view);
            PyErr_SetString(PyExc_ValueError, "invalid RESP reply");
            return NULL;
        }
        pos = end;
        count++;
    }
    PyBuffer_Release(&view);
    PyObject *c = PyLong_FromSsize_t(count), *e = PyLong_FromSsize_t(pos);
    if (c == NULL || e == NULL) {
        Py_XDECREF(c);
        Py_XDECREF(e);
        return NULL;
    }
    PyObject *out = PyTuple_Pack(2, c, e);
    Py_DECREF(c);
    Py_DECREF(e);
    return out;
}

static PyObject *
request_end(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2 || !PyBytes_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "request_end(buf: bytes, pos)");
        return NULL;
    }
    Py_ssize_t pos = PyLong_AsSsize_t(args[1]);
    if (pos == -1 && PyErr_Occurred())
        return NULL;
    const char *b = PyBytes_AS_STRING(args[0]);
    Py_ssize_t n = PyBytes_GET_SIZE(args[0]);
    long long argc, len;
    if (pos >= n)
        return PyLong_FromLong(INCOMPLETE);
    if (b[pos] != '*')
        return PyLong_FromLong(INVALID);
    Py_ssize_t q = line_int(b, n, pos + 1, &argc);
    if (q < 0)
        return PyLong_FromSsize_t(q);
    for (long long i = 0; i < argc; i++) {
        if (q >= n)
            return PyLong_FromLong(INCOMPLETE);
        if (b[q] != '$')
            return PyLong_FromLong(INVALID);
        Py_ssize_t r = line_int(b, n, q + 1, &len);
        if (r < 0)
            return PyLong_FromSsize_t(r);
        if (len < 0)
            return PyLong_FromLong(INVALID);
        if (r + len + 2 > n)
            return PyLong_FromLong(INCOMPLETE);
        q = r + len + 2;
    }
    return PyLong_FromSsize_t(q);
}

static PyObject *
interleave(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2 || !PyBytes_Check(args[0]) || !PyList_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "interleave(order: bytes, parts: list[bytes])");
        return NULL;
    }
    const unsigned char *order = (const unsigned char *)PyBytes_AS_STRING(args[0]);
    Py_ssize_t count = PyBytes_GET_SIZE(args[0]);
    PyObject *parts = args[1];
    Py_ssize_t nparts = PyList_GET_SIZE(parts), total = 0;
    Py_ssize_t at[MAX_GROUPS];
    if (nparts > MAX_GROUPS) {
        PyErr_SetString(PyExc_ValueError, "too many parts");
        return NULL;
    }
    for (Py_ssize_t i = 0; i < nparts; i++) {
        PyObject *part = PyList_GET_ITEM(parts, i);
        if (!PyBytes_Check(part)) {
            PyErr_SetString(PyExc_TypeError, "parts must be bytes");
            return NULL;
        }
        total += PyBytes_GET_SIZE(part);
        at[i] = 0;
    }
    PyObject *out = PyBytes_FromStringAndSize(NULL, total);
    if (out == NULL)
        return NULL;
    char *dst = PyBytes_AS_STRING(out);
    Py_ssize_t written = 0;
    for (Py_ssize_t i = 0; i < count; i++) {
        unsigned g = order[i];
        if ((Py_ssize_t)g >= nparts)
            goto bad;
        PyObject *part = PyList_GET_ITEM(parts, g);
        const char *b = PyBytes_AS_STRING(part);
        Py_ssize_t n = PyBytes_GET_SIZE(part);
        Py_ssize_t end = frame_end(b, n, at[g]);
        if (end < 0)
            goto bad;
        memcpy(dst + written, b + at[g], (size_t)(end - at[g]));
        written += end - at[g];
        at[g] = end;
    }
    if (written != total)
        goto bad;
    return out;
bad:
    Py_DECREF(out);
    PyErr_SetString(PyExc_ValueError, "the reply parts do not match the request order");
    return NULL;
}

static PyObject *
route(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 8 || !PyBytes_Check(args[0]) || !PyDict_Check(args[2]) ||
        !PyDict_Check(args[3])) {
        PyErr_SetString(PyExc_TypeError,
                        "route(buf: bytes, pos, commands: dict, cache: dict, index_of, "
                        "max_argc, max_bulk, max_requests)");
        return NULL;
    }
    PyObject *buf = args[0], *commands = args[2], *cache = args[3], *index_of = args[4];
    Py_ssize_t pos = PyLong_AsSsize_t(args[1]);
    long long max_argc = PyLong_AsLongLong(args[5]);
    long long max_bulk = PyLong_AsLongLong(args[6]);
    Py_ssize_t max_requests = PyLong_AsSsize_t(args[7]);
    if (PyErr_Occurred())
        return NULL;
    const char *b = PyBytes_AS_STRING(buf);
    Py_ssize_t n = PyBytes_GET_SIZE(buf), start = pos;
    if (max_requests < 1)
        max_requests = 1;
    if (max_requests > MAX_RUN)
        max_requests = MAX_RUN;
    Py_ssize_t bounds[2 * MAX_RUN];
    unsigned char gidx[MAX_RUN];
    long shards[MAX_GROUPS];
    int reads[MAX_GROUPS];
    Py_ssize_t sizes[MAX_GROUPS], counts[MAX_GROUPS];
    int ngroups = 0;
    Py_ssize_t nreq = 0;
    const char *last_name = NULL;
    Py_ssize_t last_len = -1;
    long info = 0;
    PyObject *result = NULL, *order = NULL, *groups = NULL;

    while (nreq < max_requests && pos < n) {
        long long argc, len;
        Py_ssize_t q, key_off = -1, key_len = 0;
        int first = 0, readonly = 0, arity = 0, ok = 1;
        if (b[pos] != '*')
            break;
        q = line_int(b, n, pos + 1, &argc);
        if (q < 0 || argc < 1 || argc > max_argc)
            break;
        for (long long i = 0; i < argc; i++) {
            Py_ssize_t r;
            if (q >= n || b[q] != '$') {
                ok = 0;
                break;
            }
            r = line_int(b, n, q + 1, &len);
            if (r < 0 || len < 0 || len > max_bulk || r + len + 2 > n ||
                b[r + len] != '\r' || b[r + len + 1] != '\n') {
                ok = 0;
                break;
            }
            if (i == 0) {
                if (last_name == NULL && name_table == commands && name_len == len &&
                    memcmp(name_seen, b + r, (size_t)len) == 0) {
                    info = name_info;
                    last_name = b + r;
                    last_len = len;
                }
                else if (!(last_name != NULL && last_len == len &&
                           memcmp(last_name, b + r, (size_t)len) == 0)) {
                    PyObject *name = PyBytes_FromStringAndSize(b + r, len);
                    if (name == NULL)
                        goto fail;
                    PyObject *found = PyDict_GetItemWithError(commands, name);
                    Py_DECREF(name);
                    if (found == NULL) {
                        if (PyErr_Occurred())
                            goto fail;
                        ok = 0;
                        break;
                    }
                    info = PyLong_AsLong(found);
                    if (info == -1 && PyErr_Occurred())
                        goto fail;
                    last_name = b + r;
                    last_len = len;
                    if (len <= (Py_ssize_t)sizeof(name_seen)) {
                        name_table = commands;
                        memcpy(name_seen, b + r, (size_t)len);
                        name_len = len;
                        name_info = info;
                    }
                }
                first = (int)(info & 0x7f);
                readonly = (int)((info >> 7) & 1);
                arity = (int)(info >> 8) - 128;
            }
            else if (i == first) {
                key_off = r;
                key_len = len;
            }
            q = r + len + 2;
        }
        if (!ok || key_off < 0)
            break;
        if (arity > 0 ? argc != arity : argc < -arity)
            break;
        PyObject *key = PyBytes_FromStringAndSize(b + key_off, key_len);
        if (key == NULL)
            goto fail;
        PyObject *shard_obj = PyDict_GetItemWithError(cache, key);
        long shard;
        if (shard_obj != NULL) {
            shard = PyLong_AsLong(shard_obj);
        }
        else if (PyErr_Occurred()) {
            Py_DECREF(key);
            goto fail;
        }
        else {
            shard_obj = PyObject_CallOneArg(index_of, key);
            if (shard_obj == NULL) {
                Py_DECREF(key);
                goto fail;
            }
            shard = PyLong_AsLong(shard_obj);
            Py_DECREF(shard_obj);
        }
        Py_DECREF(key);
        if (shard == -1 && PyErr_Occurred())
            goto fail;
        int g = 0;
        while (g < ngroups && shards[g] != shard)
            g++;
        if (g == ngroups) {
            if (ngroups == MAX_GROUPS)
                break;
            shards[g] = shard;
            reads[g] = 1;
            sizes[g] = 0;
            counts[g] = 0;
            ngroups++;
        }
        reads[g] &= readonly;
        bounds[2 * nreq] = pos;
        bounds[2 * nreq + 1] = q;
        gidx[nreq] = (unsigned char)g;
        sizes[g] += q - pos;
        counts[g]++;
        nreq++;
        pos = q;
    }

    order = PyBytes_FromStringAndSize((const char *)gidx, nreq);
    groups = PyList_New(ngroups);
    if (order == NULL || groups == NULL)
        goto fail;
    for (int g = 0; g < ngroups; g++) {
        PyObject *payload;
        if (ngroups == 1 && start == 0 && pos == n) {
            payload = buf; /* the whole buffer is this one group: no copy */
            Py_INCREF(payload);
        }
        else {
            payload = PyBytes_FromStringAndSize(NULL, sizes[g]);
            if (payload == NULL)
                goto fail;
            char *dst = PyBytes_AS_STRING(payload);
            for (Py_ssize_t i = 0; i < nreq; i++) {
                if (gidx[i] == g) {
                    Py_ssize_t s = bounds[2 * i], e = bounds[2 * i + 1];
                    memcpy(dst, b + s, (size_t)(e - s));
                    dst += e - s;
                }
            }
        }
        PyObject *code = PyLong_FromLong(shards[g] * 2 + reads[g]);
        PyObject *count = PyLong_FromSsize_t(counts[g]);
        PyObject *item = (code && count) ? PyTuple_Pack(3, code, payload, count) : NULL;
        Py_XDECREF(code);
        Py_XDECREF(count);
        Py_DECREF(payload);
        if (item == NULL)
            goto fail;
        PyList_SET_ITEM(groups, g, item);
    }
    PyObject *end = PyLong_FromSsize_t(pos);
    if (end != NULL) {
        result = PyTuple_Pack(3, end, order, groups);
        Py_DECREF(end);
    }
fail:
    Py_XDECREF(order);
    Py_XDECREF(groups);
    return result;
}

static PyMethodDef methods[] = {
    {"route", (PyCFunction)(void (*)(void))route, METH_FASTCALL, "Route a run of requests."},
    {"frames", (PyCFunction)(void (*)(void))frames, METH_FASTCALL, "Skip reply frames."},
    {"request_end", (PyCFunction)(void (*)(void))request_end, METH_FASTCALL,
     "The end of a complete request."},
    {"interleave", (PyCFunction)(void (*)(void))interleave, METH_FASTCALL,
     "Replies in request order."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_speedups", "The redkeeper proxy's hot loops in C.", -1, methods,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    return PyModule_Create(&module);
}
