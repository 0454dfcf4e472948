package cuda

import (
	"fmt"
	"unsafe"
)

func op(trans bool) uintptr {
	if trans {
		return 1 // CUBLAS_OP_T
	}
	return 0 // CUBLAS_OP_N
}

// Gemm is C = alpha·op(A)·op(B) + beta·C on row-major float32 matrices in device memory, with
// the meaning of blas.Sgemm: op(A) is m×k, op(B) k×n, C m×n, and lda, ldb, ldc are row strides.
// It computes in the context's Precision. cuBLAS is column-major, and a row-major matrix is its
// transpose seen column-major, so this is the column-major Cᵀ = op(B)ᵀ·op(A)ᵀ: cuBLAS gets B
// first, and m and n swapped.
func (c *Ctx) Gemm(transA, transB bool, m, n, k int, alpha float32, a Ptr, lda int, b Ptr, ldb int,
	beta float32, cc Ptr, ldc int) error {
	return c.GemmBatched(transA, transB, m, n, k, alpha, a, lda, 0, b, ldb, 0, beta, cc, ldc, 0, 1)
}

// GemmBatched is Gemm on batch independent problems, problem i at A + i·sA, B + i·sB,
// C + i·sC (strides in elements).
func (c *Ctx) GemmBatched(transA, transB bool, m, n, k int, alpha float32, a Ptr, lda, sA int,
	b Ptr, ldb, sB int, beta float32, cc Ptr, ldc, sC int, batch int) error {
	if m == 0 || n == 0 || batch == 0 {
		return nil
	}
	c.one[0], c.one[1] = alpha, beta
	pa, pb := uintptr(unsafe.Pointer(&c.one[0])), uintptr(unsafe.Pointer(&c.one[1]))
	const r32f = 0 // CUDA_R_32F
	var r uintptr
	if batch == 1 {
		r = ccall(c.a.cublasGemmEx, c.blas, op(transB), op(transA), uintptr(n), uintptr(m), uintptr(k),
			pa, uintptr(b), r32f, uintptr(ldb), uintptr(a), r32f, uintptr(lda),
			pb, uintptr(cc), r32f, uintptr(ldc), c.prec.computeType(), ^uintptr(0)) // CUBLAS_GEMM_DEFAULT = −1
	} else {
		r = ccall(c.a.cublasGemmStridedBatchedEx, c.blas, op(transB), op(transA), uintptr(n), uintptr(m), uintptr(k),
			pa, uintptr(b), r32f, uintptr(ldb), uintptr(int64(sB)), uintptr(a), r32f, uintptr(lda), uintptr(int64(sA)),
			pb, uintptr(cc), r32f, uintptr(ldc), uintptr(int64(sC)), uintptr(batch), c.prec.computeType(), ^uintptr(0))
	}
	if r != 0 {
		return cublasErr(fmt.Sprintf("GEMM %s m=%d n=%d k=%d batch=%d transA=%v transB=%v", c.prec, m, n, k, batch, transA, transB), r)
	}
	return nil
}
