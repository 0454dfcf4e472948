//go:build cgo && amd64

package blas

// The header's name is unique to the project: cgo compiles the preamble in $TMPDIR with -I . after
// it, so a header of a common name left there would shadow this one (see anert/model/kernels_cgo.go).

// #cgo CFLAGS: -O3
// #include "anelab_small.h"
import "C"

import "unsafe"

// smallKernel is SgemmSmall's kernel on this CPU ("" when it has none: Sgemm instead).
var smallKernel = func() string {
	if C.anelab_small_available() != 0 {
		return "avx512"
	}
	return ""
}()

// sgemmSmall runs anelab_small.c's kernel; false if it cannot (no AVX-512, or B transposed).
func sgemmSmall(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int,
	b []float32, ldb int, beta float32, c []float32, ldc int) bool {
	if transB {
		return false
	}
	fp := func(s []float32) *C.float { return (*C.float)(unsafe.Pointer(unsafe.SliceData(s))) }
	flag := func(t bool) C.int {
		if t {
			return 1
		}
		return 0
	}
	return C.anelab_small_sgemm(flag(transA), C.long(m), C.long(n), C.long(k), C.float(alpha),
		fp(a), C.long(lda), fp(b), C.long(ldb), C.float(beta), fp(c), C.long(ldc)) != 0
}
