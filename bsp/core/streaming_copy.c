/* bsp.core.streaming_copy: the copy a `send` makes of a large array
 * (Engine.capture), with streaming (non-temporal) stores.
 *
 * The sender never reads its copy again, so its stores need not bring each
 * line of the destination into the cache first, as ordinary stores do: that
 * read is a third of a large copy's memory traffic.  glibc's memcpy streams
 * only above a threshold it derives from the cache size the CPU reports,
 * which a virtual machine may report many times too large (this project's
 * VM: 320 MiB of L3 reported, 32 MiB present, so memcpy never streamed).
 * Two ranks capturing 64 MiB each at once took 7.4-8.4 ms with memcpy and
 * 4.9-5.4 ms streaming (docs/benchmarks.md).
 *
 * Part of the compiled build only (setup.py builds it beside the mypyc
 * modules, bsp/compiled.py keeps a pure Python process from loading it);
 * the pure Python build copies with a slice assignment.  Where SSE2 is not
 * available (not x86), the copy is memcpy.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#if defined(__SSE2__)
#include <emmintrin.h>

/* Stream 64-byte blocks to the 16-byte-aligned part of `dest`; memcpy the
   unaligned head and the tail. */
static void
copy_streaming(char *dest, const char *src, size_t nbytes)
{
    size_t head = (16 - ((uintptr_t)dest & 15)) & 15;
    if (head > nbytes)
        head = nbytes;
    memcpy(dest, src, head);
    dest += head;
    src += head;
    nbytes -= head;
    size_t body = nbytes & ~(size_t)63;
    for (size_t at = 0; at < body; at += 64) {
        __m128i a = _mm_loadu_si128((const __m128i *)(src + at));
        __m128i b = _mm_loadu_si128((const __m128i *)(src + at + 16));
        __m128i c = _mm_loadu_si128((const __m128i *)(src + at + 32));
        __m128i d = _mm_loadu_si128((const __m128i *)(src + at + 48));
        _mm_stream_si128((__m128i *)(dest + at), a);
        _mm_stream_si128((__m128i *)(dest + at + 16), b);
        _mm_stream_si128((__m128i *)(dest + at + 32), c);
        _mm_stream_si128((__m128i *)(dest + at + 48), d);
    }
    _mm_sfence();       /* streamed stores are weakly ordered: done before anyone is told */
    memcpy(dest + body, src + body, nbytes - body);
}
#else
static void
copy_streaming(char *dest, const char *src, size_t nbytes)
{
    memcpy(dest, src, nbytes);
}
#endif

PyDoc_STRVAR(copy_into_doc,
"copy_into(dest, src)\n--\n\n"
"Copy the bytes of `src` to the start of `dest` (contiguous buffers that do\n"
"not overlap), with streaming stores.  ValueError if `dest` is shorter.");

static PyObject *
copy_into(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    Py_buffer dest, src;
    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError, "copy_into(dest, src) takes 2 arguments, not %zd", nargs);
        return NULL;
    }
    if (PyObject_GetBuffer(args[0], &dest, PyBUF_WRITABLE) < 0)
        return NULL;
    if (PyObject_GetBuffer(args[1], &src, PyBUF_SIMPLE) < 0) {
        PyBuffer_Release(&dest);
        return NULL;
    }
    if (src.len > dest.len) {
        PyErr_Format(PyExc_ValueError, "copy_into: %zd bytes do not fit in %zd", src.len, dest.len);
    }
    else {
        Py_BEGIN_ALLOW_THREADS
        copy_streaming((char *)dest.buf, (const char *)src.buf, (size_t)src.len);
        Py_END_ALLOW_THREADS
    }
    PyBuffer_Release(&src);
    PyBuffer_Release(&dest);
    if (PyErr_Occurred())
        return NULL;
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"copy_into", (PyCFunction)(void (*)(void))copy_into, METH_FASTCALL, copy_into_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "bsp.core.streaming_copy",
    "The copy of a large array at send, with streaming stores (see the source).", -1, methods,
};

PyMODINIT_FUNC
PyInit_streaming_copy(void)
{
    return PyModule_Create(&module);
}
