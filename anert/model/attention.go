package model

import (
	"math"

	"github.com/anelab/anelab/anert/blas"
)

// attnRowsForward is causal softmax attention for the queries [r0, r1) of one sequence and one
// head, with GEMMs:
//
//	S = scale·Q·Kᵀ,  P_{t,s} = exp(S_{t,s} − lse_t) for s ≤ t (0 for s > t),
//	lse_t = log Σ_{s≤t} exp(S_{t,s}),  A = P·V.
//
// q, k, v and a are strided views of one head: row t is x[t·ld : t·ld+hd] (ld = model width, the
// head's column offset already applied). lse [T] is saved for the backward pass; s is scratch of
// (r1−r0)×T, left holding those rows of P (columns [0, r1)), which the backward may read instead
// of recomputing them (tune.keepP: s is then the block's rows of the pair's LayerActs.P). The
// queries [r0, r1) need only the keys [0, r1), so cutting the rows of a head into blocks skips
// about half of the masked upper triangle.
//
// What runs: the CPU backend's attnFwdJob.Run calls this per (sequence, head, row block) item on
// the team's goroutines: two single-threaded BLAS GEMMs around softmaxCausal
// (anelab_softmax_causal in kernels.c on cgo builds, softmaxCausalGo below without cgo) — or, on
// cgo builds for head dims that are multiples of 16 (attnFusedFwd), attnRowsForwardFused, the same
// formulas in one C kernel (kernels.c's anelab_attn_tmpl.h), which TestFusedAttention compares
// with this function.
func attnRowsForward(a, lse, q, k, v, s []float32, T, hd, ld int, scale float32, r0, r1 int) {
	blas.Sgemm(false, true, r1-r0, r1, hd, scale, q[r0*ld:], ld, k, ld, 0, s, T)
	softmaxCausal(s, T, r1-r0, r0, r1, lse[r0:])
	blas.Sgemm(false, false, r1-r0, hd, r1, 1, s, T, v, ld, 0, a[r0*ld:], ld)
}

// attnFused reports whether the CPU backend, on a team of workers goroutines, runs attention
// through the fused C kernels (attnRowsForwardFused, attnHeadBackwardFused: kernels.c's
// anelab_attn_tmpl.h) rather than the BLAS path here: in cgo builds on x86-64 CPUs with AVX2 or
// AVX-512 (attnPanel), for head dims that are multiples of 16, on teams of at most tune.fusedAttn
// goroutines (ANELAB_CPU_TUNE's fattn, 8: on 16 cores the step ran faster without them, see
// cpuTune). They compute the same formulas per panel of queries (16 or 64, attnPanel) with
// register-tiled loops instead of BLAS calls on small blocks, at which oneDNN ran one head of the
// default shape at about half its sgemm rate (BenchmarkAttentionHead). The backward is fused only
// where the CPU backend's items are whole heads (CPU.group); the two-loop path stays on BLAS.
func attnFused(hd, workers int) bool { return fusedUpTo(hd, workers, tune.fusedAttn) }

// attnFusedFwd reports whether the forward pass's items, of sequences of T tokens, run through
// the fused kernel (attnRowsForwardFused): where attnFused, and beyond it on teams of up to
// tune.fusedAttnFwd goroutines (fattnf) for sequences of at least tune.fusedFwdSeq tokens
// (fattnft), the backward staying on BLAS there.
func attnFusedFwd(hd, workers, T int) bool {
	return attnFused(hd, workers) || T >= tune.fusedFwdSeq && fusedUpTo(hd, workers, tune.fusedAttnFwd)
}

// fusedUpTo reports whether the fused kernels apply to head dim hd on a team of workers
// goroutines, where teams of up to most may run them.
func fusedUpTo(hd, workers, most int) bool {
	return attnPanel > 0 && max(workers, 1) <= most && hd%16 == 0
}

// attnFusedScratch is the floats of scratch a fused kernel needs for queries up to n: a panel of
// the queries transposed [hd × panel] and its scores transposed [n × panel].
func attnFusedScratch(hd, n int) int { return max(attnPanel, 1) * (hd + n) }

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

// The backward of attention for one sequence and head, given dA (same strided layout as A),
// recomputing P from q, k and lse (or, with lse nil, reading the P its forward pass left in s,
// tune.keepP):
//
//	dP = dA·Vᵀ,  dV = Pᵀ·dA,
//	dS_{t,s} = scale · P_{t,s}·(dP_{t,s} − Σ_{s'} P_{t,s'}·dP_{t,s'}),
//	dQ = dS·K,  dK = dSᵀ·Q,
//
// runs in two steps over blocks of the same size as the forward's: attnRowsBackward on every
// block of query rows (P, dS and dQ of those rows), then attnColsBackward on every block of key
// columns (dK, dV of those keys), which reads the P and dS of the rows at or below its block.
// s and dp are the head's T×T scratch (they end holding P and dS); with the same partition for
// rows and columns, every entry a column block reads was written (or zeroed) by a row block.
// What runs: the CPU backend's attnBwdJob.Run, either one loop over whole heads
// (attnHeadBackward, or attnHeadBackwardFused where attnFused: one C kernel, compared with it by
// TestFusedAttention) or two loops of (head, block) items per group of heads; five
// single-threaded BLAS GEMMs per block around softmaxCausalBackward (anelab_softmax_causal_bwd in
// kernels.c on cgo builds, softmaxCausalBackwardGo below without cgo).

// attnHeadBackward is the backward over one whole head: every row block, then every key block
// (blocks of blk), with s and dp the head's T×T scratch.
func attnHeadBackward(dq, dk, dv, da, q, k, v, lse, s, dp []float32, T, hd, ld int, scale float32, blk int) {
	for r0 := 0; r0 < T; r0 += blk {
		attnRowsBackward(dq, da, q, k, v, lse, s, dp, T, hd, ld, scale, r0, min(r0+blk, T))
	}
	for c0 := 0; c0 < T; c0 += blk {
		attnColsBackward(dk, dv, da, q, s, dp, T, hd, ld, c0, min(c0+blk, T))
	}
}

// attnRowsBackward is the backward's first step for the query rows [r0, r1): P and dS of those
// rows (columns [0, r1)) into s and dp, and dQ[r0:r1] = dS·K (overwritten). With lse nil, s
// already holds those rows of P as attnRowsForward left them (its scratch at s[r0·T:]), and
// S = scale·Q·Kᵀ and its exponentials are not computed again.
func attnRowsBackward(dq, da, q, k, v, lse, s, dp []float32, T, hd, ld int, scale float32, r0, r1 int) {
	if lse != nil {
		blas.Sgemm(false, true, r1-r0, r1, hd, scale, q[r0*ld:], ld, k, ld, 0, s[r0*T:], T)
		lse = lse[r0:]
	}
	blas.Sgemm(false, true, r1-r0, r1, hd, 1, da[r0*ld:], ld, v, ld, 0, dp[r0*T:], T)
	softmaxCausalBackward(s[r0*T:], dp[r0*T:], T, r1-r0, r0, r1, scale, lse)
	blas.Sgemm(false, false, r1-r0, hd, r1, 1, dp[r0*T:], T, k, ld, 0, dq[r0*ld:], ld)
}

// attnColsBackward is the backward's second step for the keys [c0, c1): dV[c0:c1] = Pᵀ·dA and
// dK[c0:c1] = dSᵀ·Q over the query rows [c0, T) (the rows above c0 do not see these keys),
// overwritten.
func attnColsBackward(dk, dv, da, q, s, dp []float32, T, hd, ld, c0, c1 int) {
	blas.Sgemm(true, false, c1-c0, hd, T-c0, 1, s[c0*T+c0:], T, da[c0*ld:], ld, 0, dv[c0*ld:], ld)
	blas.Sgemm(true, false, c1-c0, hd, T-c0, 1, dp[c0*T+c0:], T, q[c0*ld:], ld, 0, dk[c0*ld:], ld)
}

// softmaxCausalBackwardGo is the softmax backward of rows rows laid out as in softmaxCausalGo:
// p holds the scaled scores S and dp the gradient dP of P. It recomputes P_{t,s} =
// exp(S_{t,s} − lse[i]) into p and overwrites dp with dS_{t,s} = scale·P_{t,s}·(dP_{t,s} −
// Σ_{s'} P_{t,s'}·dP_{t,s'}) for s ≤ t, zeroing both beyond column t up to ncols. With lse nil,
// p already holds P (the forward's, tune.keepP) and only dS is computed.
// The formula: the !cgo build's kernel and the C kernel's reference.
func softmaxCausalBackwardGo(p, dp []float32, ld, rows, t0, ncols int, scale float32, lse []float32) {
	for i := range rows {
		t := t0 + i
		pr, g := p[i*ld:i*ld+ncols], dp[i*ld:i*ld+ncols]
		var dot float32
		for j, x := range pr[:t+1] {
			e := x
			if lse != nil {
				e = expf(x - lse[i])
				pr[j] = e
			}
			dot += e * g[j]
		}
		for j, e := range pr[:t+1] {
			g[j] = scale * e * (g[j] - dot)
		}
		clear(pr[t+1:])
		clear(g[t+1:])
	}
}
