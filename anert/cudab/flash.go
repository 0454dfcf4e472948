package cudab

import (
	_ "embed"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/anelab/anelab/anert/cuda"
)

//go:embed flash.cu
var flashSrc string

// Attention is how the cuda backend computes causal attention.
type Attention string

const (
	// AttentionGEMM is batched cuBLAS GEMMs around a fused causal softmax: S = scale·Q·Kᵀ and P
	// are [B·H, T, T] buffers in device memory, P saved per layer for the backward pass.
	AttentionGEMM Attention = "gemm"
	// AttentionFlash is the fused flash-style kernels of flash.cu: online softmax over key tiles,
	// only the log-sum-exp per query row saved, P recomputed in the backward pass. fp32 tiles in
	// cuda-fp32; bf16 tensor-core tiles (mma.sync) in bf16 mode (flashUsesBF16).
	AttentionFlash Attention = "flash"
)

// DefaultAttention is what runs when neither --attention nor ANELAB_CUDA_ATTENTION says: the
// GEMM path. The flash kernels pass on a GPU (an H100, 5 Dec 2026: TestFlash*KernelsOnGPU and the
// agreement tests with flash) but measured slower in bf16 mode (0.99× at the default shape, 0.92× at
// the original's: gpucheck.sh); flash becomes the default when it is no slower at both configs.
const DefaultAttention = AttentionGEMM

// AttentionEnv names the environment variable that chooses the attention when no flag does
// (it reaches the supervised children of `anelab run` and workers too).
const AttentionEnv = "ANELAB_CUDA_ATTENTION"

// ParseAttention is the attention a run uses: flag ("" when not given), else $ANELAB_CUDA_ATTENTION,
// else DefaultAttention. A bad value is an error naming where it came from.
func ParseAttention(flag string) (Attention, error) {
	v, from := flag, "--attention"
	if v == "" {
		v, from = os.Getenv(AttentionEnv), AttentionEnv
	}
	switch Attention(strings.TrimSpace(v)) {
	case "":
		return DefaultAttention, nil
	case AttentionGEMM:
		return AttentionGEMM, nil
	case AttentionFlash:
		return AttentionFlash, nil
	}
	return "", fmt.Errorf("%s = %q: must be %q or %q", from, v, AttentionFlash, AttentionGEMM)
}

// flashHeadDims are the head dims flash.cu has kernels for (q, o, dq, dk, dv live in registers,
// so HD is a compile-time constant); flashBF16HeadDims those with bf16 tensor-core kernels (HD a
// multiple of the mma's k = 16). In bf16 mode a head dim without them runs the fp32 kernels.
var (
	flashHeadDims     = []int{8, 16, 32, 48, 64}
	flashBF16HeadDims = []int{16, 32, 48, 64}
)

// Tile sizes of flash.cu, passed to NVRTC and to g++ (TestFlashEmulated) as -D flags, so that
// the launch geometry below and the kernels' tiles have one source.
const (
	flashBQ  = 64 // query rows per block = threads (forward, dQ)
	flashBK  = 32 // keys per shared tile (forward, dQ)
	flashBKV = 64 // key rows per block = threads (dK/dV)
	flashBQ2 = 16 // query rows per shared tile (dK/dV)

	flashBWarps = 4  // bf16: warps per block, 16 rows each (forward, dQ: query rows; dK/dV: key rows)
	flashBBK    = 64 // bf16: keys per shared tile (forward, dQ), query rows per shared tile (dK/dV)
)

func flashDefines() []string {
	return []string{fmt.Sprintf("-DFLASH_BQ=%d", flashBQ), fmt.Sprintf("-DFLASH_BK=%d", flashBK),
		fmt.Sprintf("-DFLASH_BKV=%d", flashBKV), fmt.Sprintf("-DFLASH_BQ2=%d", flashBQ2),
		fmt.Sprintf("-DFLASHB_WARPS=%d", flashBWarps), fmt.Sprintf("-DFLASHB_BK=%d", flashBBK)}
}

// flashSupports returns nil if flash.cu has kernels for head dim hd, else an error saying what to do.
func flashSupports(hd int) error {
	if slices.Contains(flashHeadDims, hd) {
		return nil
	}
	return fmt.Errorf("--attention flash has kernels for head dims %v, the model's is %d (model.dim / model.heads); use --attention gemm", flashHeadDims, hd)
}

// launchDim is one launch's grid and block (one-dimensional).
type launchDim struct{ grid, block int }

// flashGeom is the launch geometry of the four flash kernels for BH heads of T rows: forward
// and dQ one block per (head, FLASH_BQ query rows), dK/dV one per (head, FLASH_BKV key rows),
// the D = rowsum(dO∘O) pass grid-stride over the BH·T rows.
// The bf16 kernels (bf16 true) are one block of flashBWarps warps per (head, 16·flashBWarps rows)
// for all three.
type flashGeom struct{ fwd, pre, dq, dkdv launchDim }

func flashGeometry(BH, T int, bf16 bool) flashGeom {
	cdiv := func(a, b int) int { return (a + b - 1) / b }
	pre := launchDim{max(1, min(cdiv(BH*T, 256), maxBlocks)), 256}
	if bf16 {
		b := launchDim{cdiv(T, 16*flashBWarps) * BH, 32 * flashBWarps}
		return flashGeom{fwd: b, dq: b, dkdv: b, pre: pre}
	}
	q := launchDim{cdiv(T, flashBQ) * BH, flashBQ}
	return flashGeom{fwd: q, dq: q, dkdv: launchDim{cdiv(T, flashBKV) * BH, flashBKV}, pre: pre}
}

// flashKernels are one head dim's kernels and the shared D pass; bf16 says which variant.
type flashKernels struct {
	fwd, dq, dkdv, pre *cuda.Func
	bf16               bool
}

// flashUsesBF16 says whether a context of precision p runs head dim hd's bf16 tensor-core kernels
// (else the fp32 ones: cuda-fp32 always, for exact agreement with the CPU backend).
func flashUsesBF16(p cuda.Precision, hd int) bool {
	return p != cuda.FP32 && slices.Contains(flashBF16HeadDims, hd)
}

// compileFlash compiles flash.cu (only when a run uses it) and looks up head dim hd's kernels,
// bf16 tensor-core ones when the context computes in bf16 (flashUsesBF16).
func compileFlash(c *cuda.Ctx, hd int) (*flashKernels, error) {
	if err := flashSupports(hd); err != nil {
		return nil, err
	}
	m, err := c.Compile("cudab_flash.cu", flashSrc, flashDefines()...)
	if err != nil {
		return nil, err
	}
	k := &flashKernels{bf16: flashUsesBF16(c.Precision(), hd)}
	v := ""
	if k.bf16 {
		v = "bf16_"
	}
	if err := lookup(m, []kernelRef{
		{&k.fwd, fmt.Sprintf("flash_fwd_%s%d", v, hd)}, {&k.dq, fmt.Sprintf("flash_bwd_dq_%s%d", v, hd)},
		{&k.dkdv, fmt.Sprintf("flash_bwd_dkdv_%s%d", v, hd)}, {&k.pre, "flash_bwd_pre_k"},
	}); err != nil {
		return nil, err
	}
	return k, nil
}

// flashForward is O, lse = attention(Q, K, V) for BH heads of T rows of head dim hd (head-major
// device buffers; the formula is flash.cu's).
func flashForward(c *cuda.Ctx, k *flashKernels, O, lse, Q, K, V cuda.Ptr, T, BH, hd int) error {
	g := flashGeometry(BH, T, k.bf16)
	scale := float32(1 / sqrtF(float64(hd)))
	return c.Launch(k.fwd, cuda.Dim3{X: g.fwd.grid}, cuda.Dim3{X: g.fwd.block}, 0, O, lse, Q, K, V, T, BH, scale)
}

// flashBackward is dQ, dK, dV from dO and the forward's O and lse (recomputing P); Dv is
// [BH·T] scratch for D = rowsum(dO∘O).
func flashBackward(c *cuda.Ctx, k *flashKernels, dQ, dK, dV, Dv, Q, K, V, O, dO, lse cuda.Ptr, T, BH, hd int) error {
	g := flashGeometry(BH, T, k.bf16)
	scale := float32(1 / sqrtF(float64(hd)))
	if err := c.Launch(k.pre, cuda.Dim3{X: g.pre.grid}, cuda.Dim3{X: g.pre.block}, 0, Dv, dO, O, int64(BH*T), hd); err != nil {
		return err
	}
	if err := c.Launch(k.dq, cuda.Dim3{X: g.dq.grid}, cuda.Dim3{X: g.dq.block}, 0, dQ, Q, K, V, dO, lse, Dv, T, BH, scale); err != nil {
		return err
	}
	return c.Launch(k.dkdv, cuda.Dim3{X: g.dkdv.grid}, cuda.Dim3{X: g.dkdv.block}, 0, dK, dV, Q, K, V, dO, lse, Dv, T, BH, scale)
}
