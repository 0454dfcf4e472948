package optim

import (
	"math"

	"github.com/anelab/anelab/anert/config"
	"github.com/anelab/anelab/anert/tensor"
	"github.com/anelab/anelab/internal/num"
)

// Gradient accumulation and loss scaling, the contract between the loop and the optimizer:
//
//  1. Each of the o.Accum micro-steps seeds the loss gradient with GradScale(o) = S/Accum
//     (S = LossScale(o)), so after k micro-steps the accumulated gradient is
//     G = Σ_k S/Accum · ∂L_k/∂w.
//  2. PrepareGrads(ps, o, k) multiplies every G by Accum/(k·S), which leaves the mean gradient
//     (1/k)·Σ_k ∂L_k/∂w — also for a final partial accumulation (k < Accum) — and then clips
//     its global norm to o.GradClip.
//  3. The optimizer steps on the result.
//
// Every parameter's gradient is unscaled and clipped, the tied embedding's included.

// LossScale is the effective loss scale S: o.LossScale, or 1 when it is 0 (disabled).
func LossScale(o config.Optim) float64 {
	if o.LossScale == 0 {
		return 1
	}
	return o.LossScale
}

// GradScale is the factor each micro-step seeds its loss gradient with: S/Accum.
func GradScale(o config.Optim) float64 { return LossScale(o) / float64(max(o.Accum, 1)) }

// PrepareGrads turns the gradients accumulated over micro micro-steps (each seeded with
// GradScale(o)) into the mean gradient and clips it:
//
//	G ← G · Accum/(micro·S);  norm = ‖G‖₂ over all parameters;  if norm > GradClip: G ← G·GradClip/norm
//
// It returns the pre-clip norm of the unscaled gradient. A non-finite norm (NaN or ±Inf) is
// returned with the gradients unclipped: the caller must not step, and declares divergence.
// micro ≤ 0 is taken as o.Accum. The work runs on threads goroutines (0: all cores).
func PrepareGrads(ps []*tensor.Param, o config.Optim, micro, threads int) float64 {
	accum := max(o.Accum, 1)
	if micro <= 0 {
		micro = accum
	}
	f := float64(accum) / (float64(micro) * LossScale(o))
	norm := math.Sqrt(scaleSumSquares(ps, float32(f), threads))
	clipTo(ps, norm, o.GradClip, threads)
	return norm
}

// Unscale multiplies every gradient by factor: G ← factor·G.
func Unscale(ps []*tensor.Param, factor float32, threads int) {
	if factor == 1 {
		return
	}
	parallel(threads, gradChunks(ps), func(c chunk) { scaleSlice(ps[c.p].G[c.lo:c.hi], factor) })
}

// GradNorm is the global L2 norm √(Σ g²) over every gradient element, accumulated in float64.
func GradNorm(ps []*tensor.Param, threads int) float64 {
	return math.Sqrt(scaleSumSquares(ps, 1, threads))
}

// ClipGradNorm scales all gradients by max/norm when their global L2 norm exceeds max
// (max ≤ 0 disables clipping) and returns the pre-clip norm. A non-finite norm is returned
// without touching the gradients: the caller declares divergence.
func ClipGradNorm(ps []*tensor.Param, max float64, threads int) (norm float64) {
	norm = GradNorm(ps, threads)
	clipTo(ps, norm, max, threads)
	return norm
}

func clipTo(ps []*tensor.Param, norm, max float64, threads int) {
	if max > 0 && num.Finite(norm) && norm > max {
		Unscale(ps, float32(max/norm), threads)
	}
}

// scaleSumSquares multiplies every gradient by f (skipped when f = 1) and returns Σ g² of the
// result in float64. Chunk sums are added in chunk order, so the result does not depend on the
// goroutine schedule.
func scaleSumSquares(ps []*tensor.Param, f float32, threads int) float64 {
	cs := gradChunks(ps)
	sums := make([]float64, len(cs))
	parallelIdx(threads, cs, func(k int, c chunk) { sums[k] = scaleSumSq(ps[c.p].G[c.lo:c.hi], f) })
	var total float64
	for _, s := range sums {
		total += s
	}
	return total
}

// gradChunks splits every gradient into chunks of at most chunkLen elements.
func gradChunks(ps []*tensor.Param) []chunk {
	var cs []chunk
	for i, p := range ps {
		cs = appendChunks(cs, i, len(p.G))
	}
	return cs
}

// scaleSumSqGo multiplies g by f (skipped when f = 1) and returns Σ g² of the result in float64
// (scaleSumSq is the build's version).
func scaleSumSqGo(g []float32, f float32) float64 {
	if f != 1 {
		for i := range g {
			g[i] *= f
		}
	}
	var s0, s1 float64
	i := 0
	for ; i+1 < len(g); i += 2 {
		a, b := float64(g[i]), float64(g[i+1])
		s0 += a * a
		s1 += b * b
	}
	if i < len(g) {
		a := float64(g[i])
		s0 += a * a
	}
	return s0 + s1
}

// scaleSliceGo is g ← f·g (scaleSlice is the build's version).
func scaleSliceGo(g []float32, f float32) {
	for i := range g {
		g[i] *= f
	}
}
