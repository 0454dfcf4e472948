package optim

import (
	"fmt"
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
//  2. Prepare(ps, o, k) finds the factor u = Accum/(k·S) that leaves the mean gradient
//     (1/k)·Σ_k ∂L_k/∂w — also for a final partial accumulation (k < Accum) — the global norm of
//     u·G, and the factor c that clips it to o.GradClip.
//  3. The optimizer's Update steps on g' = (g·u)·c, reading each gradient once, and leaves it 0.
//
// Every parameter's gradient is unscaled and clipped, the tied embedding's included.
//
// Memory traffic per parameter and update (Lion; AdamW adds v's 8 bytes), which is what bounds
// this phase on many cores: the norm pass reads g (4 bytes), the update reads w, g, m and writes
// w, m and g = 0 (24 bytes): 28 bytes in 2 loops. Rewriting G to unscale (4 more) and to clip (8),
// then a separate zeroing pass (a read for ownership and a write, 8) made 32–44 in up to 4 loops.

// LossScale is the effective loss scale S: o.LossScale, or 1 when it is 0 (disabled).
func LossScale(o config.Optim) float64 {
	if o.LossScale == 0 {
		return 1
	}
	return o.LossScale
}

// GradScale is the factor each micro-step seeds its loss gradient with: S/Accum.
func GradScale(o config.Optim) float64 { return LossScale(o) / float64(max(o.Accum, 1)) }

// Prep is one update's gradient preparation (Prepare): the pre-clip global norm of the unscaled
// gradients and the two factors an update applies to each gradient as it reads it,
//
//	g' = (g·Unscale)·Clip    (two float32 products, in this order)
//
// which is bit for bit what unscaling G in place and then clipping it in place gives (Apply).
type Prep struct {
	Norm          float64 // ‖Unscale·G‖₂ over all parameters, before clipping; NaN or ±Inf if any gradient is
	Unscale, Clip float32 // Accum/(micro·S); GradClip/Norm when Norm exceeds it, else 1
}

// check panics on a Prep that Prepare did not make (the zero Prep would step on zero gradients):
// a programming error.
func (p Prep) check() {
	if !(p.Unscale > 0 && p.Clip > 0) {
		panic(fmt.Sprintf("optim: Update got Prep %+v: pass the one Prepare returned", p))
	}
}

// AsIs is the Prep of gradients that PrepareGrads already rewrote: Update then steps on G as it is.
var AsIs = Prep{Unscale: 1, Clip: 1}

// Prepare prepares the gradients accumulated over micro micro-steps (each seeded with
// GradScale(o)) without writing them:
//
//	u = Accum/(micro·S);  norm = ‖u·G‖₂ over all parameters;  c = GradClip/norm if norm > GradClip, else 1
//
// A non-finite norm (NaN or ±Inf: some gradient is) comes with c = 1: the caller must not step,
// and declares divergence. micro ≤ 0 is taken as o.Accum. The norm is one parallel loop over every
// gradient, on threads goroutines (0: all cores).
func Prepare(ps []*tensor.Param, o config.Optim, micro, threads int) Prep {
	accum := max(o.Accum, 1)
	if micro <= 0 {
		micro = accum
	}
	u := float32(float64(accum) / (float64(micro) * LossScale(o)))
	p := Prep{Norm: math.Sqrt(sumSquares(ps, u, threads)), Unscale: u, Clip: 1}
	if m := o.GradClip; m > 0 && num.Finite(p.Norm) && p.Norm > m {
		p.Clip = float32(m / p.Norm)
	}
	return p
}

// Apply rewrites every gradient as an update reads it: G ← (G·Unscale)·Clip, each product skipped
// when its factor is 1. For callers that need the prepared gradients themselves (a comparison
// with another backend's); the training loop lets Update apply them instead.
func (p Prep) Apply(ps []*tensor.Param, threads int) {
	unscale(ps, p.Unscale, threads)
	unscale(ps, p.Clip, threads)
}

// PrepareGrads is Prepare, then Apply: it rewrites the gradients as the mean gradient, clipped,
//
//	G ← G · Accum/(micro·S);  norm = ‖G‖₂ over all parameters;  if norm > GradClip: G ← G·GradClip/norm
//
// and returns the pre-clip norm (a non-finite one with the gradients unscaled but unclipped).
func PrepareGrads(ps []*tensor.Param, o config.Optim, micro, threads int) float64 {
	p := Prepare(ps, o, micro, threads)
	p.Apply(ps, threads)
	return p.Norm
}

// unscale multiplies every gradient by factor: G ← factor·G.
func unscale(ps []*tensor.Param, factor float32, threads int) {
	if factor == 1 {
		return
	}
	parallel(threads, gradChunks(ps), func(c chunk) { scaleSlice(ps[c.p].G[c.lo:c.hi], factor) })
}

// sumSquares is Σ (u·g)² over every gradient (u·g rounded to float32, as Apply would write it,
// then squared and summed in float64). Chunk sums are added in chunk order, so the result does not
// depend on the goroutine schedule.
func sumSquares(ps []*tensor.Param, u float32, threads int) float64 {
	cs := gradChunks(ps)
	sums := make([]float64, len(cs))
	parallelIdx(threads, cs, func(k int, c chunk) { sums[k] = sumSqScaled(ps[c.p].G[c.lo:c.hi], u) })
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

// sumSqScaledGo is Σ (u·g)² over g, each u·g a float32 product, squared and summed in float64
// (sumSqScaled is the build's version). g is only read.
func sumSqScaledGo(g []float32, u float32) float64 {
	var s0, s1 float64
	i := 0
	for ; i+1 < len(g); i += 2 {
		a, b := float64(g[i]*u), float64(g[i+1]*u)
		s0 += a * a
		s1 += b * b
	}
	if i < len(g) {
		a := float64(g[i] * u)
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
