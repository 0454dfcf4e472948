//go:build cgo && linux && onednn

package blas

/*
#cgo linux LDFLAGS: -ldnnl -lgomp
#include <oneapi/dnnl/dnnl.h>
#include <omp.h>

// Each OS thread keeps its own OpenMP thread count (an ICV of its implicit task): set it, once per
// change, on the thread that makes the call, so that a call in serial mode runs on its caller
// alone, whichever thread Go runs the goroutine on.
static __thread int thread_count = -1;

static int sgemm_rm(int nthreads, int ta, int tb, int m, int n, int k, float alpha, const float *a,
                    int lda, const float *b, int ldb, float beta, float *c, int ldc) {
	if (thread_count != nthreads) {
		omp_set_num_threads(nthreads);
		thread_count = nthreads;
	}
	return (int)dnnl_sgemm(ta ? 'T' : 'N', tb ? 'T' : 'N', m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

// The matmul primitive path (SetPrimitives): oneDNN's brgemm kernels on a product described with
// strides, so that a block of a larger matrix is read in place; one primitive per product shape
// (transpositions, sizes, strides, α, β), created on first use and kept. A table probed without a
// lock: an entry is published (ready = 1) only once complete, under mm_mu; ready = 2 marks a shape
// the library refused, which then goes to dnnl_sgemm. Each OS thread has its own stream and
// scratchpad (scratchpad mode user: the library's own is shared by all threads).
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
	atomic_int ready;
	int ta, tb;
	long m, n, k, lda, ldb, ldc;
	float alpha, beta;
	dnnl_primitive_t p;
	size_t scratch;
	dnnl_memory_desc_t a, b, c;
} mm_entry;

#define MM_SLOTS 2048
static mm_entry mm_tab[MM_SLOTS];
static pthread_mutex_t mm_mu = PTHREAD_MUTEX_INITIALIZER;
static dnnl_engine_t mm_eng;
static atomic_int mm_count;
static __thread dnnl_stream_t mm_stream;
static __thread void *mm_scratch;
static __thread size_t mm_scratch_size;

static int mm_same(const mm_entry *e, int ta, int tb, long m, long n, long k, long lda, long ldb, long ldc, float alpha, float beta) {
	return e->ta == ta && e->tb == tb && e->m == m && e->n == n && e->k == k && e->lda == lda && e->ldb == ldb &&
	       e->ldc == ldc && memcmp(&e->alpha, &alpha, sizeof alpha) == 0 && memcmp(&e->beta, &beta, sizeof beta) == 0;
}

static unsigned mm_hash(int ta, int tb, long m, long n, long k, long lda, long ldb, long ldc, float alpha, float beta) {
	unsigned long h = 1469598103934665603UL, v[10];
	unsigned af, bf;
	memcpy(&af, &alpha, sizeof af);
	memcpy(&bf, &beta, sizeof bf);
	v[0] = ta, v[1] = tb, v[2] = m, v[3] = n, v[4] = k, v[5] = lda, v[6] = ldb, v[7] = ldc, v[8] = af, v[9] = bf;
	for (int i = 0; i < 10; i++) h = (h ^ v[i]) * 1099511628211UL;
	return (unsigned)(h ^ (h >> 29));
}

// mm_find is the published entry of the shape, or the first free slot of its probe (*free), or NULL.
static mm_entry *mm_find(unsigned h, mm_entry **free, int ta, int tb, long m, long n, long k, long lda, long ldb, long ldc, float alpha, float beta) {
	for (int i = 0; i < MM_SLOTS; i++) {
		mm_entry *e = &mm_tab[(h + i) & (MM_SLOTS - 1)];
		if (atomic_load_explicit(&e->ready, memory_order_acquire) == 0) {
			if (free) *free = e;
			return NULL;
		}
		if (mm_same(e, ta, tb, m, n, k, lda, ldb, ldc, alpha, beta)) return e;
	}
	return NULL;
}

static int mm_build(mm_entry *e, int ta, int tb, long m, long n, long k, long lda, long ldb, long ldc, float alpha, float beta) {
	if (!mm_eng && dnnl_engine_create(&mm_eng, dnnl_cpu, 0) != dnnl_success) return 0;
	dnnl_dims_t ad = {m, k}, as = {ta ? 1 : lda, ta ? lda : 1}, bd = {k, n}, bs = {tb ? 1 : ldb, tb ? ldb : 1};
	dnnl_dims_t cd = {m, n}, cs = {ldc, 1};
	if (dnnl_memory_desc_init_by_strides(&e->a, 2, ad, dnnl_f32, as) || dnnl_memory_desc_init_by_strides(&e->b, 2, bd, dnnl_f32, bs) ||
	    dnnl_memory_desc_init_by_strides(&e->c, 2, cd, dnnl_f32, cs))
		return 0;
	dnnl_matmul_desc_t d;
	if (dnnl_matmul_desc_init(&d, &e->a, &e->b, NULL, &e->c)) return 0;
	dnnl_primitive_attr_t at;
	if (dnnl_primitive_attr_create(&at)) return 0;
	int ok = dnnl_primitive_attr_set_scratchpad_mode(at, dnnl_scratchpad_mode_user) == dnnl_success;
	if (ok && alpha != 1) ok = dnnl_primitive_attr_set_output_scales(at, 1, 0, &alpha) == dnnl_success;
	dnnl_post_ops_t po = NULL;
	if (ok && beta != 0) {
		ok = dnnl_post_ops_create(&po) == dnnl_success && dnnl_post_ops_append_sum(po, beta) == dnnl_success &&
		     dnnl_primitive_attr_set_post_ops(at, po) == dnnl_success;
	}
	dnnl_primitive_desc_t pd = NULL;
	ok = ok && dnnl_primitive_desc_create(&pd, &d, at, mm_eng, NULL) == dnnl_success;
	if (ok) {
		e->scratch = dnnl_memory_desc_get_size(dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0));
		ok = dnnl_primitive_create(&e->p, pd) == dnnl_success;
	}
	if (pd) dnnl_primitive_desc_destroy(pd);
	if (po) dnnl_post_ops_destroy(po);
	dnnl_primitive_attr_destroy(at);
	return ok;
}

// sgemm_mm runs the product through its matmul primitive; 0 when done, 1 when the shape must go
// to dnnl_sgemm (refused by the library, or the table full), else a dnnl status.
static int sgemm_mm(int nthreads, int ta, int tb, int m, int n, int k, float alpha, const float *a, int lda,
                    const float *b, int ldb, float beta, float *c, int ldc) {
	unsigned h = mm_hash(ta, tb, m, n, k, lda, ldb, ldc, alpha, beta);
	mm_entry *e = mm_find(h, NULL, ta, tb, m, n, k, lda, ldb, ldc, alpha, beta);
	if (!e) {
		pthread_mutex_lock(&mm_mu);
		mm_entry *slot = NULL;
		e = mm_find(h, &slot, ta, tb, m, n, k, lda, ldb, ldc, alpha, beta);
		if (!e && slot && atomic_load(&mm_count) < MM_SLOTS / 2) {
			e = slot;
			e->ta = ta, e->tb = tb, e->m = m, e->n = n, e->k = k, e->lda = lda, e->ldb = ldb, e->ldc = ldc;
			e->alpha = alpha, e->beta = beta;
			int ok = mm_build(e, ta, tb, m, n, k, lda, ldb, ldc, alpha, beta);
			atomic_fetch_add(&mm_count, 1);
			atomic_store_explicit(&e->ready, ok ? 1 : 2, memory_order_release);
		}
		pthread_mutex_unlock(&mm_mu);
		if (!e) return 1;
	}
	if (atomic_load_explicit(&e->ready, memory_order_acquire) != 1) return 1;
	if (thread_count != nthreads) {
		omp_set_num_threads(nthreads);
		thread_count = nthreads;
	}
	if (!mm_stream && dnnl_stream_create(&mm_stream, mm_eng, dnnl_stream_default_flags)) return 1;
	if (mm_scratch_size < e->scratch) {
		free(mm_scratch);
		mm_scratch_size = (e->scratch + 4095) / 4096 * 4096;
		mm_scratch = aligned_alloc(4096, mm_scratch_size);
		if (!mm_scratch) {
			mm_scratch_size = 0;
			return 1;
		}
	}
	dnnl_memory_t am = NULL, bm = NULL, cm = NULL, sm = NULL;
	dnnl_memory_desc_t smd;
	dnnl_dims_t sd = {(dnnl_dim_t)(e->scratch ? e->scratch : 1)};
	int st = dnnl_memory_create(&am, &e->a, mm_eng, (void *)a);
	if (!st) st = dnnl_memory_create(&bm, &e->b, mm_eng, (void *)b);
	if (!st) st = dnnl_memory_create(&cm, &e->c, mm_eng, c);
	if (!st && e->scratch) st = dnnl_memory_desc_init_by_tag(&smd, 1, sd, dnnl_u8, dnnl_a);
	if (!st && e->scratch) st = dnnl_memory_create(&sm, &smd, mm_eng, mm_scratch);
	if (!st) {
		dnnl_exec_arg_t args[4] = {{DNNL_ARG_SRC, am}, {DNNL_ARG_WEIGHTS, bm}, {DNNL_ARG_DST, cm}, {DNNL_ARG_SCRATCHPAD, sm}};
		st = dnnl_primitive_execute(e->p, mm_stream, e->scratch ? 4 : 3, args);
		if (!st) st = dnnl_stream_wait(mm_stream);
	}
	if (am) dnnl_memory_destroy(am);
	if (bm) dnnl_memory_destroy(bm);
	if (cm) dnnl_memory_destroy(cm);
	if (sm) dnnl_memory_destroy(sm);
	return st ? 2 + st : 0;
}

static int primitive_count(void) { return atomic_load(&mm_count); }

static const char *isa_name(void) {
	switch (dnnl_get_effective_cpu_isa()) {
	case dnnl_cpu_isa_sse41: return "sse41";
	case dnnl_cpu_isa_avx: return "avx";
	case dnnl_cpu_isa_avx2: return "avx2";
	case dnnl_cpu_isa_avx2_vnni: return "avx2_vnni";
	case dnnl_cpu_isa_avx512_core: return "avx512_core";
	case dnnl_cpu_isa_avx512_core_vnni: return "avx512_core_vnni";
	case dnnl_cpu_isa_avx512_core_bf16: return "avx512_core_bf16";
	case dnnl_cpu_isa_avx512_core_amx: return "avx512_core_amx";
	default: return "other";
	}
}

static int dnnl_version_major(void) { return dnnl_version()->major; }
static int dnnl_version_minor(void) { return dnnl_version()->minor; }
static int dnnl_version_patch(void) { return dnnl_version()->patch; }
*/
import "C"

import (
	"fmt"
	"sync/atomic"
	"unsafe"
)

// Backend names the BLAS this build links: oneDNN's sgemm (the onednn build tag), whose JIT
// kernels follow the CPU's features as it reports them (CPUID), whatever OPENBLAS_CORETYPE says.
const Backend = "onednn"

// libThreadCount is the thread count calls use (setLibThreads).
var libThreadCount atomic.Int64

func init() { libThreadCount.Store(int64(C.omp_get_max_threads())) }

func sgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int,
	b []float32, ldb int, beta float32, c []float32, ldc int) {
	if mask := primitives.Load(); mask != 0 && mask&transMask(transA, transB) != 0 {
		st := C.sgemm_mm(C.int(libThreadCount.Load()), cbool(transA), cbool(transB), C.int(m), C.int(n), C.int(k), C.float(alpha),
			(*C.float)(unsafe.Pointer(&a[0])), C.int(lda), (*C.float)(unsafe.Pointer(&b[0])), C.int(ldb),
			C.float(beta), (*C.float)(unsafe.Pointer(&c[0])), C.int(ldc))
		switch st {
		case 0:
			return
		case 1: // a shape the primitive does not take: dnnl_sgemm below
		default:
			panic(fmt.Sprintf("blas: oneDNN's matmul(%v, %v, %d, %d, %d) failed with status %d", transA, transB, m, n, k, int(st)-2))
		}
	}
	st := C.sgemm_rm(C.int(libThreadCount.Load()), cbool(transA), cbool(transB), C.int(m), C.int(n), C.int(k), C.float(alpha),
		(*C.float)(unsafe.Pointer(&a[0])), C.int(lda), (*C.float)(unsafe.Pointer(&b[0])), C.int(ldb),
		C.float(beta), (*C.float)(unsafe.Pointer(&c[0])), C.int(ldc))
	if st != 0 { // check has validated the arguments: a failure here is the library's
		panic(fmt.Sprintf("blas: dnnl_sgemm(%v, %v, %d, %d, %d) failed with status %d", transA, transB, m, n, k, int(st)))
	}
}

func cbool(b bool) C.int {
	if b {
		return 1
	}
	return 0
}

// setLibThreads sets the number of OpenMP threads one call uses.
func setLibThreads(n int) { libThreadCount.Store(int64(max(n, 1))) }

// libThreads is the thread count calls use (at first OpenMP's default: the CPU count, or
// OMP_NUM_THREADS).
func libThreads() int { return int(libThreadCount.Load()) }

// libCore is the instruction set oneDNN's kernels use on this CPU ("avx512_core", …).
func libCore() string { return C.GoString(C.isa_name()) }

// Config is oneDNN's version and the instruction set in use.
func Config() string {
	return fmt.Sprintf("oneDNN %d.%d.%d, isa %s", int(C.dnnl_version_major()), int(C.dnnl_version_minor()),
		int(C.dnnl_version_patch()), libCore())
}

// primitivesBuilt is how many product shapes have a matmul primitive (or were refused one).
func primitivesBuilt() int { return int(C.primitive_count()) }
