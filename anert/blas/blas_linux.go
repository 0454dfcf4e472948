//go:build cgo && linux && !onednn

package blas

/*
#cgo linux LDFLAGS: -lopenblas
#include <cblas.h>
// Declared here too, so that the build works whichever cblas.h the system's alternatives pick.
void openblas_set_num_threads(int num_threads);
int openblas_get_num_threads(void);

static void sgemm_rm(int ta, int tb, int m, int n, int k, float alpha, const float *a, int lda,
                     const float *b, int ldb, float beta, float *c, int ldc) {
	cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
	            m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}
*/
import "C"

import "unsafe"

// Backend names the BLAS this build links.
const Backend = "openblas"

func sgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int,
	b []float32, ldb int, beta float32, c []float32, ldc int) {
	C.sgemm_rm(cbool(transA), cbool(transB), C.int(m), C.int(n), C.int(k), C.float(alpha),
		(*C.float)(unsafe.Pointer(&a[0])), C.int(lda), (*C.float)(unsafe.Pointer(&b[0])), C.int(ldb),
		C.float(beta), (*C.float)(unsafe.Pointer(&c[0])), C.int(ldc))
}

func cbool(b bool) C.int {
	if b {
		return 1
	}
	return 0
}

// setLibThreads sets the number of threads OpenBLAS uses for one call.
func setLibThreads(n int) { C.openblas_set_num_threads(C.int(n)) }

// libThreads is OpenBLAS's thread count (its default: the CPU count, or OPENBLAS_NUM_THREADS).
func libThreads() int { return int(C.openblas_get_num_threads()) }
