package cuda

import (
	"fmt"
	"math"
	"unsafe"
)

// DType is the element type of a GEMM operand in device memory.
type DType int

const (
	TypeF32  DType = 0  // IEEE single (CUDA_R_32F)
	TypeBF16 DType = 14 // bfloat16: fp32's sign, exponent and top 7 mantissa bits (CUDA_R_16BF)
)

func (d DType) String() string {
	if d == TypeBF16 {
		return "bf16"
	}
	return "f32"
}

// Size is the bytes per element.
func (d DType) Size() int {
	if d == TypeBF16 {
		return 2
	}
	return 4
}

func (d DType) cudaType() uintptr { return uintptr(d) } // the constants are cudaDataType_t's

// Compute is a cuBLAS compute type (cublasComputeType_t): how the products are formed and summed.
type Compute int

const (
	// Compute32F: fp32 accumulation; with bf16 A and B the tensor cores multiply them exactly.
	Compute32F Compute = 68
	// Compute32FPedantic: IEEE fp32 throughout, no TF32, no reduced-precision reductions.
	Compute32FPedantic Compute = 69
	// Compute32FFast16BF: fp32 tensors rounded to bf16 on load, fp32 accumulation.
	Compute32FFast16BF Compute = 75
)

func (c Compute) String() string {
	switch c {
	case Compute32F:
		return "32F"
	case Compute32FPedantic:
		return "32F_PEDANTIC"
	case Compute32FFast16BF:
		return "32F_FAST_16BF"
	}
	return fmt.Sprintf("compute(%d)", int(c))
}

// Operand is a row-major matrix, or a batch of them, in device memory: element type, row stride
// LD and the distance Stride between a batch's matrices, both in elements.
type Operand struct {
	P      Ptr
	Type   DType
	LD     int
	Stride int
}

// F32 is an fp32 operand; BF16Op a bf16 one (stride 0: set Stride for a batch).
func F32(p Ptr, ld int) Operand    { return Operand{P: p, Type: TypeF32, LD: ld} }
func BF16Op(p Ptr, ld int) Operand { return Operand{P: p, Type: TypeBF16, LD: ld} }

// GemmTyped is Gemm (row-major C = alpha·op(A)·op(B) + beta·C) on operands of any DType with the
// compute type given, on batch problems (problem i at each operand's P + i·Stride). alpha and
// beta are fp32 (the scale type of the 32F compute types). Supported by cuBLAS: A, B, C all f32
// (any of the three compute types); A, B bf16 with C bf16 or f32 (Compute32F).
func (c *Ctx) GemmTyped(transA, transB bool, m, n, k int, alpha float32, a, b Operand, beta float32, cc Operand,
	compute Compute, batch int) error {
	if m == 0 || n == 0 || batch == 0 {
		return nil
	}
	c.one[0], c.one[1] = alpha, beta
	pa, pb := uintptr(unsafe.Pointer(&c.one[0])), uintptr(unsafe.Pointer(&c.one[1]))
	var r uintptr
	if batch == 1 {
		r = ccall(c.a.cublasGemmEx, c.blas, op(transB), op(transA), uintptr(n), uintptr(m), uintptr(k),
			pa, uintptr(b.P), b.Type.cudaType(), uintptr(b.LD), uintptr(a.P), a.Type.cudaType(), uintptr(a.LD),
			pb, uintptr(cc.P), cc.Type.cudaType(), uintptr(cc.LD), uintptr(compute), ^uintptr(0)) // CUBLAS_GEMM_DEFAULT = −1
	} else {
		r = ccall(c.a.cublasGemmStridedBatchedEx, c.blas, op(transB), op(transA), uintptr(n), uintptr(m), uintptr(k),
			pa, uintptr(b.P), b.Type.cudaType(), uintptr(b.LD), uintptr(int64(b.Stride)),
			uintptr(a.P), a.Type.cudaType(), uintptr(a.LD), uintptr(int64(a.Stride)),
			pb, uintptr(cc.P), cc.Type.cudaType(), uintptr(cc.LD), uintptr(int64(cc.Stride)), uintptr(batch),
			uintptr(compute), ^uintptr(0))
	}
	if r != 0 {
		return cublasErr(fmt.Sprintf("GEMM %s×%s→%s compute %s m=%d n=%d k=%d batch=%d transA=%v transB=%v",
			a.Type, b.Type, cc.Type, compute, m, n, k, batch, transA, transB), r)
	}
	return nil
}

// ToBF16 is f rounded to the nearest bf16, ties to even (NaN stays a quiet NaN), as the kernels'
// f2bf does.
func ToBF16(f float32) uint16 {
	u := math.Float32bits(f)
	if u&0x7fffffff > 0x7f800000 {
		return uint16(u>>16) | 0x40
	}
	u += 0x7fff + (u>>16)&1
	return uint16(u >> 16)
}

// FromBF16 is the float32 a bf16 value stands for (exact).
func FromBF16(h uint16) float32 { return math.Float32frombits(uint32(h) << 16) }

// RoundBF16 is f rounded to bf16 precision, as a float32.
func RoundBF16(f float32) float32 { return FromBF16(ToBF16(f)) }

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
	return c.GemmTyped(transA, transB, m, n, k, alpha, Operand{a, TypeF32, lda, sA}, Operand{b, TypeF32, ldb, sB},
		beta, Operand{cc, TypeF32, ldc, sC}, Compute(c.prec.computeType()), batch)
}
