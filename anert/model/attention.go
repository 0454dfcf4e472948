package model

import (
	"math"

	"github.com/anelab/anelab/anert/blas"
)

// attnHeadForward is causal softmax attention for one sequence and one head, with GEMMs:
//
//	S = scale·Q·Kᵀ,  P_{t,s} = exp(S_{t,s} − lse_t) for s ≤ t (0 for s > t),
//	lse_t = log Σ_{s≤t} exp(S_{t,s}),  A = P·V.
//
// q, k, v and a are strided views of one head: row t is x[t·ld : t·ld+hd] (ld = model width, the
// head's column offset already applied). lse [T] is saved for the backward pass; s is T×T scratch.
// The rows are processed in blocks of blk: block [r0, r1) needs only keys [0, r1), so about half
// of the masked upper triangle is never computed.
//
// What runs: the CPU backend's attnFwdJob.Run calls this per (sequence, head) pair on the team's
// goroutines; each block is two single-threaded BLAS GEMMs around softmaxCausal
// (anelab_softmax_causal in kernels.c on cgo builds, softmaxCausalGo below without cgo).
func attnHeadForward(a, lse, q, k, v, s []float32, T, hd, ld int, scale float32, blk int) {
	for r0 := 0; r0 < T; r0 += blk {
		r1 := min(r0+blk, T)
		blas.Sgemm(false, true, r1-r0, r1, hd, scale, q[r0*ld:], ld, k, ld, 0, s[r0*T:], T)
		softmaxCausal(s[r0*T:], T, r1-r0, r0, r1, lse[r0:])
		blas.Sgemm(false, false, r1-r0, hd, r1, 1, s[r0*T:], T, v, ld, 0, a[r0*ld:], ld)
	}
}

// softmaxCausalGo is the causal softmax of rows rows of scores: row i (at s[i·ld:]) is query
// t = t0 + i, and its columns [0, t] hold S_{t,0..t}. It overwrites them with P_{t,s} =
// exp(S_{t,s} − m)/Σ, zeroes columns [t+1, ncols), and sets lse[i] = m + log Σ, the row's
// log-sum-exp (m = max_s S_{t,s}, Σ = Σ_s exp(S_{t,s} − m)). The formula: the !cgo build's kernel
// and the C kernel's reference.
func softmaxCausalGo(s []float32, ld, rows, t0, ncols int, lse []float32) {
	for i := range rows {
		t := t0 + i
		row := s[i*ld : i*ld+ncols]
		m := row[0]
		for _, x := range row[1 : t+1] {
			m = max(m, x)
		}
		var sum float32
		for j, x := range row[:t+1] {
			e := expf(x - m)
			row[j] = e
			sum += e
		}
		inv := 1 / sum
		for j := range row[:t+1] {
			row[j] *= inv
		}
		clear(row[t+1:])
		lse[i] = m + float32(math.Log(float64(sum)))
	}
}

// attnHeadBackward is the backward of attnHeadForward for one sequence and head. Given
// dA (same strided layout) it recomputes P from q, k and lse, then overwrites dq, dk, dv:
//
//	dP = dA·Vᵀ,  dV = Pᵀ·dA,
//	dS_{t,s} = scale · P_{t,s}·(dP_{t,s} − Σ_{s'} P_{t,s'}·dP_{t,s'}),
//	dQ = dS·K,  dK = dSᵀ·Q.
//
// s and dp are T×T scratch (they end holding P and dS). Blocks as in attnHeadForward: the same
// row partition for P, dP, dS and dQ, and the same partition of key columns for dK and dV, so that
// every entry a GEMM reads was written (or zeroed) by this call.
//
// What runs: attnBwdJob.Run per (sequence, head) pair; six BLAS GEMMs per block around
// softmaxCausalBackward (anelab_softmax_causal_bwd in kernels.c on cgo builds,
// softmaxCausalBackwardGo below without cgo).
func attnHeadBackward(dq, dk, dv, da, q, k, v, lse, s, dp []float32, T, hd, ld int, scale float32, blk int) {
	for r0 := 0; r0 < T; r0 += blk {
		r1 := min(r0+blk, T)
		blas.Sgemm(false, true, r1-r0, r1, hd, scale, q[r0*ld:], ld, k, ld, 0, s[r0*T:], T)
		blas.Sgemm(false, true, r1-r0, r1, hd, 1, da[r0*ld:], ld, v, ld, 0, dp[r0*T:], T)
		softmaxCausalBackward(s[r0*T:], dp[r0*T:], T, r1-r0, r0, r1, scale, lse[r0:])
		blas.Sgemm(false, false, r1-r0, hd, r1, 1, dp[r0*T:], T, k, ld, 0, dq[r0*ld:], ld)
	}
	for c0 := 0; c0 < T; c0 += blk {
		c1 := min(c0+blk, T)
		blas.Sgemm(true, false, c1-c0, hd, T-c0, 1, s[c0*T+c0:], T, da[c0*ld:], ld, 0, dv[c0*ld:], ld)
		blas.Sgemm(true, false, c1-c0, hd, T-c0, 1, dp[c0*T+c0:], T, q[c0*ld:], ld, 0, dk[c0*ld:], ld)
	}
}

// softmaxCausalBackwardGo is the softmax backward of rows rows laid out as in softmaxCausalGo:
// p holds the scaled scores S and dp the gradient dP of P. It recomputes P_{t,s} =
// exp(S_{t,s} − lse[i]) into p and overwrites dp with dS_{t,s} = scale·P_{t,s}·(dP_{t,s} −
// Σ_{s'} P_{t,s'}·dP_{t,s'}) for s ≤ t, zeroing both beyond column t up to ncols.
// The formula: the !cgo build's kernel and the C kernel's reference.
func softmaxCausalBackwardGo(p, dp []float32, ld, rows, t0, ncols int, scale float32, lse []float32) {
	for i := range rows {
		t := t0 + i
		pr, g := p[i*ld:i*ld+ncols], dp[i*ld:i*ld+ncols]
		l := lse[i]
		var dot float32
		for j, x := range pr[:t+1] {
			e := expf(x - l)
			pr[j] = e
			dot += e * g[j]
		}
		for j, e := range pr[:t+1] {
			g[j] = scale * e * (g[j] - dot)
		}
		clear(pr[t+1:])
		clear(g[t+1:])
	}
}
