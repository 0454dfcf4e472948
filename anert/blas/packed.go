package blas

import (
	"fmt"
	"sync"
	"time"
	"unsafe"

	"github.com/anelab/anelab/internal/par"
)

// Packed products. A BLAS packs its operands into a blocked layout at every call; a GEMM split
// into a grid of blocks over many goroutines (the model's step) repacks each column block of
// op(B) once per row block. PackB packs it once and SgemmPacked computes with the packed copy,
// which also keeps oneDNN on its copy-based kernels: for blocks this small it otherwise picks
// no-copy kernels that read op(B) in place.

// canPack is set by a backend that can pack (oneDNN, where libdnnl exports its pack API).
var canPack bool

// CanPack reports whether this build packs (PackedSize, PackB, SgemmPacked); where it does not,
// callers use Sgemm.
func CanPack() bool { return canPack }

// packAlign: a packed operand starts on a 64-byte boundary of the caller's slice (PackedSize
// leaves room for it), the alignment the library's own buffers have.
const packAlign = 64

// MinPackRows: a pack serves products of at least this many rows (oneDNN's sgemm_pack_get_size
// crashes below it; SgemmPacked may then compute fewer).
const MinPackRows = 16

// PackedSize is the float32s that PackB's dst needs for op(B) of k×n (B stored with row stride
// ldb, transposed when transB) packed for products of m ≥ MinPackRows rows.
func PackedSize(transB bool, m, n, k, ldb int) int {
	mustPack()
	if m < MinPackRows || n < 1 || k < 1 {
		panic(fmt.Sprintf("blas.PackedSize: a pack is for products of at least %d rows and n, k ≥ 1 (got m %d, n %d, k %d)", MinPackRows, m, n, k))
	}
	key := packKey{transB, m, n, k, ldb}
	packSizes.Lock()
	defer packSizes.Unlock()
	size, ok := packSizes.m[key]
	if !ok { // the library's answer costs microseconds; a step asks for the same shapes each time
		size = (packedSize(transB, m, n, k, ldb)+3)/4 + packAlign/4
		if packSizes.m == nil {
			packSizes.m = map[packKey]int{}
		}
		packSizes.m[key] = size
	}
	return size
}

type packKey struct {
	transB       bool
	m, n, k, ldb int
}

// packSizes caches PackedSize.
var packSizes struct {
	sync.Mutex
	m map[packKey]int
}

// PackB packs op(B) (k×n, B stored with row stride ldb, transposed when transB) into dst, of at
// least PackedSize(transB, m, n, k, ldb) floats, for SgemmPacked products of m rows.
func PackB(transB bool, m, n, k int, b []float32, ldb int, dst []float32) {
	mustPack()
	rows, cols := k, n
	if transB {
		rows, cols = n, k
	}
	checkMatrix("PackB", "B", rows, cols, ldb, b)
	if need := PackedSize(transB, m, n, k, ldb); len(dst) < need {
		panic(fmt.Sprintf("blas.PackB: dst has %d floats, the packed %d×%d operand needs %d", len(dst), k, n, need))
	}
	if p := par.Profiling(); p != nil { // packing is part of the products' BLAS time
		t := time.Now()
		packB(transB, m, n, k, b, ldb, aligned(dst))
		p.AddBLAS(0, time.Since(t))
		return
	}
	packB(transB, m, n, k, b, ldb, aligned(dst))
}

// SgemmPacked computes C = op(A)·P + beta·C for C m×n and P, op(B) of k×n packed by PackB for
// products of m rows (the same m, or fewer rows).
func SgemmPacked(transA bool, m, n, k int, a []float32, lda int, p []float32, beta float32, c []float32, ldc int) {
	mustPack()
	if m == 0 || n == 0 {
		return
	}
	rows, cols := m, k
	if transA {
		rows, cols = k, m
	}
	checkMatrix("SgemmPacked", "A", rows, cols, lda, a)
	checkMatrix("SgemmPacked", "C", m, n, ldc, c)
	if pr := par.Profiling(); pr != nil {
		t := time.Now()
		sgemmPacked(transA, m, n, k, a, lda, aligned(p), beta, c, ldc)
		pr.AddBLAS(2*int64(m)*int64(n)*int64(k), time.Since(t))
		return
	}
	sgemmPacked(transA, m, n, k, a, lda, aligned(p), beta, c, ldc)
}

func mustPack() {
	if !canPack {
		panic("blas: this build does not pack (CanPack is false): use Sgemm")
	}
}

// aligned is p from its first 64-byte boundary.
func aligned(p []float32) []float32 {
	off := int(uintptr(unsafe.Pointer(&p[0])) % packAlign)
	if off == 0 {
		return p
	}
	return p[(packAlign-off)/4:]
}

// checkMatrix panics with a clear message if s is too short for a rows×cols matrix of stride ld.
func checkMatrix(fn, name string, rows, cols, ld int, s []float32) {
	if rows < 0 || cols < 0 {
		panic(fmt.Sprintf("blas.%s: %s has negative size %d×%d", fn, name, rows, cols))
	}
	if rows == 0 || cols == 0 {
		return
	}
	if ld < cols {
		panic(fmt.Sprintf("blas.%s: %s stride %d < %d columns", fn, name, ld, cols))
	}
	if need := (rows-1)*ld + cols; len(s) < need {
		panic(fmt.Sprintf("blas.%s: %s has %d elements, a %d×%d matrix with stride %d needs %d", fn, name, len(s), rows, cols, ld, need))
	}
}
