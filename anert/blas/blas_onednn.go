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
