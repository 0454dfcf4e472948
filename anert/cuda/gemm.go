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

// DType is the element type of a GEMM operand in device memory.
type DType uintptr

const (
	TypeF32  DType = 0  // CUDA_R_32F
	TypeBF16 DType = 14 // CUDA_R_16BF: 2 bytes an element
)

// Compute is a cuBLAS compute type (cublasComputeType_t).
type Compute uintptr

const (
	Compute32F         Compute = 68 // CUBLAS_COMPUTE_32F: fp32 accumulation, tensor cores for 16-bit inputs
	Compute32FPedantic Compute = 69 // no TF32, no reduced-precision reductions
	Compute32FFast16BF Compute = 75 // fp32 inputs rounded to bf16 on load
)

// GemmTyped is Gemm with the operands' element types and the compute type given, for measuring
// the choices (anert/bench/cmd/cudagemm): C = alpha·op(A)·op(B) + beta·C, row-major, strides in
// elements of each operand's own type.
func (c *Ctx) GemmTyped(transA, transB bool, m, n, k int, alpha float32, a Ptr, at DType, lda int,
	b Ptr, bt DType, ldb int, beta float32, cc Ptr, ct DType, ldc int, comp Compute) error {
	c.one[0], c.one[1] = alpha, beta
	pa, pb := uintptr(unsafe.Pointer(&c.one[0])), uintptr(unsafe.Pointer(&c.one[1]))
	r := ccall(c.a.cublasGemmEx, c.blas, op(transB), op(transA), uintptr(n), uintptr(m), uintptr(k),
		pa, uintptr(b), uintptr(bt), uintptr(ldb), uintptr(a), uintptr(at), uintptr(lda),
		pb, uintptr(cc), uintptr(ct), uintptr(ldc), uintptr(comp), ^uintptr(0))
	if r != 0 {
		return cublasErr(fmt.Sprintf("GEMM types a=%d b=%d c=%d compute=%d m=%d n=%d k=%d", at, bt, ct, comp, m, n, k), r)
	}
	return nil
}
