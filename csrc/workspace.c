/* workspace.c — per-thread scratch memory, reused between calls.
 * Fresh pages cost 2-4 us each to fault in, so kernels never malloc per call:
 * each OS thread (the caller and every OpenMP worker) keeps its own blocks and
 * grows them on demand. A thread's blocks are freed when it exits. */
#define _POSIX_C_SOURCE 200112L
#define _DEFAULT_SOURCE /* mincore */
#include <stdlib.h>
#include <string.h>
#include "internal.h"
#if defined(__GLIBC__)
#include <malloc.h>
#endif
#if defined(__linux__)
#include <sys/mman.h>
#include <unistd.h>
#endif

/* (fastconv.h) Residency of the first and last pages by mincore: a block malloc
 * reuses is resident, fresh pages of a new mapping are not until touched. */
int fc_stream_output(const void *out, size_t bytes)
{
#if defined(__SSE2__) && defined(__linux__)
    const long page = sysconf(_SC_PAGESIZE);
    if (out == NULL || bytes < FC_STREAM_MIN_BYTES || page <= 0)
        return 0;
    const uintptr_t mask = ~((uintptr_t)page - 1);
    unsigned char first = 0, last = 0;
    if (mincore((void *)((uintptr_t)out & mask), (size_t)page, &first) != 0
        || mincore((void *)(((uintptr_t)out + bytes - 1) & mask), (size_t)page, &last) != 0)
        return 0;
    return (first & 1) && (last & 1);
#else
    (void)out;
    (void)bytes;
    return 0;
#endif
}

int64_t fc_l2_bytes(void)
{
    static int64_t l2 = -1; /* found once; threads that race store the same value */
    int64_t v = __atomic_load_n(&l2, __ATOMIC_RELAXED);
    if (v < 0) {
        v = 0;
#if defined(__linux__) && defined(_SC_LEVEL2_CACHE_SIZE)
        const long s = sysconf(_SC_LEVEL2_CACHE_SIZE);
        if (s > 0)
            v = s;
#endif
        __atomic_store_n(&l2, v, __ATOMIC_RELAXED);
    }
    return v;
}

/* glibc's malloc serves a request above its mmap threshold (128 KiB at first) with
 * fresh pages, and returns the top of its heap to the system once more than its trim
 * threshold is free there. Both thresholds grow as the program frees mmapped blocks,
 * up to 32 MiB and 64 MiB on 64-bit systems. A training step allocates and frees
 * arrays of several MiB together, so the heap is trimmed and grown again every
 * step and every fresh page faults (2-4 us each; more with two threads faulting at
 * once). This sets both thresholds where glibc's own adaptation ends. Returns 1 when
 * set, 0 when this C library has no such setting. */
int fc_malloc_keep(size_t mmap_threshold, size_t trim_threshold)
{
#if defined(__GLIBC__) && defined(M_MMAP_THRESHOLD) && defined(M_TRIM_THRESHOLD)
    return mallopt(M_MMAP_THRESHOLD, (int)mmap_threshold) == 1
           && mallopt(M_TRIM_THRESHOLD, (int)trim_threshold) == 1;
#else
    (void)mmap_threshold;
    (void)trim_threshold;
    return 0;
#endif
}

typedef struct {
    void *ptr[FC_WS_SLOTS];
    size_t size[FC_WS_SLOTS];
} fc_ws_set;

static _Thread_local fc_ws_set fc_ws;

#if defined(_WIN32)
#include <malloc.h>
static void *fc_aligned_alloc(size_t bytes) { return _aligned_malloc(bytes, FC_ALIGN); }
static void fc_aligned_free(void *p) { _aligned_free(p); }
static void fc_ws_register(void) {}
#else
#include <pthread.h>
static void *fc_aligned_alloc(size_t bytes)
{
    void *p = NULL;
    return posix_memalign(&p, FC_ALIGN, bytes) == 0 ? p : NULL;
}
static void fc_aligned_free(void *p) { free(p); }

/* A pthread key whose destructor frees the exiting thread's blocks. */
static pthread_key_t fc_ws_key;
static pthread_once_t fc_ws_once = PTHREAD_ONCE_INIT;
static void fc_ws_release(void *unused)
{
    (void)unused;
    for (int s = 0; s < FC_WS_SLOTS; s++) {
        fc_aligned_free(fc_ws.ptr[s]);
        fc_ws.ptr[s] = NULL;
        fc_ws.size[s] = 0;
    }
}
static void fc_ws_make_key(void) { pthread_key_create(&fc_ws_key, fc_ws_release); }
static void fc_ws_register(void)
{
    pthread_once(&fc_ws_once, fc_ws_make_key);
    pthread_setspecific(fc_ws_key, &fc_ws); /* any non-NULL value arms the destructor */
}
#endif

void *fc_workspace(int slot, size_t bytes)
{
    if (bytes == 0)
        bytes = FC_ALIGN;
    if (fc_ws.size[slot] >= bytes)
        return fc_ws.ptr[slot];
    /* Grow by at least half again, so a sequence of slightly larger calls
     * does not reallocate every time. */
    size_t want = bytes + bytes / 2;
    want = (want + FC_ALIGN - 1) / FC_ALIGN * FC_ALIGN;
    void *p = fc_aligned_alloc(want);
    if (p == NULL)
        return NULL;
    int first = 1;
    for (int s = 0; s < FC_WS_SLOTS; s++)
        first &= fc_ws.ptr[s] == NULL;
    if (first)
        fc_ws_register();
    fc_aligned_free(fc_ws.ptr[slot]);
    fc_ws.ptr[slot] = p;
    fc_ws.size[slot] = want;
    return p;
}
