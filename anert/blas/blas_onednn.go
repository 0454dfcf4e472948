//go:build cgo && linux && onednn

package blas

/*
#cgo linux LDFLAGS: -ldnnl -lgomp -ldl
#include <dlfcn.h>
#include <oneapi/dnnl/dnnl.h>
#include <omp.h>
#include <stdbool.h>
#include <stddef.h>

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

// oneDNN's pack API (sgemm_pack_get_size, sgemm_pack, sgemm_compute; column-major, as MKL's
// cblas_sgemm_pack and cblas_sgemm_compute) is exported by libdnnl but declared in no public
// header: looked up by name at run time, so that a library without it leaves packing off
// (CanPack) rather than failing to link.
typedef int (*pk_size_fn)(const char *, const char *, const char *, const long *, const long *,
                          const long *, const long *, const long *, size_t *, bool *);
typedef int (*pk_pack_fn)(const char *, const char *, const char *, const long *, const long *,
                          const long *, const long *, const long *, const float *, float *);
typedef int (*pk_compute_fn)(const char *, const char *, const long *, const long *, const long *,
                             const float *, const long *, const float *, const long *, const float *,
                             float *, const long *);
static pk_size_fn pk_size;
static pk_pack_fn pk_pack;
static pk_compute_fn pk_compute;

static int pack_init(void) {
	pk_size = (pk_size_fn)dlsym(RTLD_DEFAULT, "_ZN4dnnl4impl3cpu19sgemm_pack_get_sizeEPKcS3_S3_PKlS5_S5_S5_S5_PmPb");
	pk_pack = (pk_pack_fn)dlsym(RTLD_DEFAULT, "_ZN4dnnl4impl3cpu10sgemm_packEPKcS3_S3_PKlS5_S5_S5_S5_PKfPf");
	pk_compute = (pk_compute_fn)dlsym(RTLD_DEFAULT, "_ZN4dnnl4impl3cpu13sgemm_computeEPKcS3_PKlS5_S5_PKfS5_S7_S5_S7_PfS5_");
	return pk_size && pk_pack && pk_compute;
}

// Packed products are single-threaded (the pack's layout follows the thread count).
static void serial(void) {
	if (thread_count != 1) {
		omp_set_num_threads(1);
		thread_count = 1;
	}
}

// The row-major C[m×n] = op(A)·op(B) is oneDNN's column-major Cᵀ = op(B)ᵀ·op(A)ᵀ, of m' = n,
// n' = m: op(B)ᵀ is its first operand, the one packed ("A"), transposed as B is.
static long pack_size(int tb, long m, long n, long k, long ldb) {
	serial();
	size_t size = 0;
	bool pack = false;
	long lb = k;
	if (pk_size("A", tb ? "T" : "N", "N", &n, &m, &k, &ldb, &lb, &size, &pack) != 0) return -1;
	return (long)size;
}

static int pack_b(int tb, long m, long n, long k, const float *b, long ldb, float *dst) {
	serial();
	long lb = k;
	return pk_pack("A", tb ? "T" : "N", "N", &n, &m, &k, &ldb, &lb, b, dst);
}

static int sgemm_packed(int ta, long m, long n, long k, const float *a, long lda, const float *p,
                        float beta, float *c, long ldc) {
	serial();
	long lp = n > k ? n : k; // not read for a packed operand
	return pk_compute("P", ta ? "T" : "N", &n, &m, &k, p, &lp, a, &lda, &beta, c, &ldc);
}

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

func init() {
	libThreadCount.Store(int64(C.omp_get_max_threads()))
	canPack = C.pack_init() != 0
}

func packedSize(transB bool, m, n, k, ldb int) int {
	size := int(C.pack_size(cbool(transB), C.long(m), C.long(n), C.long(k), C.long(ldb)))
	if size < 0 {
		panic(fmt.Sprintf("blas: oneDNN's sgemm_pack_get_size(%v, %d, %d, %d) failed", transB, m, n, k))
	}
	return size
}

func packB(transB bool, m, n, k int, b []float32, ldb int, dst []float32) {
	if st := C.pack_b(cbool(transB), C.long(m), C.long(n), C.long(k), (*C.float)(unsafe.Pointer(&b[0])), C.long(ldb),
		(*C.float)(unsafe.Pointer(&dst[0]))); st != 0 {
		panic(fmt.Sprintf("blas: oneDNN's sgemm_pack(%v, %d, %d, %d) failed with status %d", transB, m, n, k, int(st)))
	}
}

func sgemmPacked(transA bool, m, n, k int, a []float32, lda int, p []float32, beta float32, c []float32, ldc int) {
	if st := C.sgemm_packed(cbool(transA), C.long(m), C.long(n), C.long(k), (*C.float)(unsafe.Pointer(&a[0])), C.long(lda),
		(*C.float)(unsafe.Pointer(&p[0])), C.float(beta), (*C.float)(unsafe.Pointer(&c[0])), C.long(ldc)); st != 0 {
		panic(fmt.Sprintf("blas: oneDNN's sgemm_compute(%v, %d, %d, %d) failed with status %d", transA, m, n, k, int(st)))
	}
}

func sgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int,
	b []float32, ldb int, beta float32, c []float32, ldc int) {
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
