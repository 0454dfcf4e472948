package model

// swigluForward is the SwiGLU gate over n elements, with σ(x) = 1/(1+e⁻ˣ):
//
//	gate = silu(h1) ⊙ h3 = h1·σ(h1)·h3.
func swigluForward(t *team, gate, h1, h3 []float32, n int) {
	j := &t.swiglu
	*j = swigluJob{gate: gate[:n], h1: h1[:n], h3: h3[:n]}
	t.run(n, t.chunks(n, 4096), j)
}

// swigluBackward is the backward of swigluForward (σ recomputed from h1):
//
//	dh1 = dgate · h3 · σ(h1) · (1 + h1·(1 − σ(h1))),   dh3 = dgate · h1 · σ(h1).
func swigluBackward(t *team, dh1, dh3, dgate, h1, h3 []float32, n int) {
	j := &t.swiglu
	*j = swigluJob{bwd: true, gate: dgate[:n], h1: h1[:n], h3: h3[:n], dh1: dh1[:n], dh3: dh3[:n]}
	t.run(n, t.chunks(n, 4096), j)
}

// swigluJob is one swigluForward or swigluBackward call (gate is dgate for the backward).
type swigluJob struct {
	bwd                    bool
	gate, h1, h3, dh1, dh3 []float32
}

func (j *swigluJob) run(_, _, lo, hi int) {
	if j.bwd {
		swigluBwd(j.dh1[lo:hi], j.dh3[lo:hi], j.gate[lo:hi], j.h1[lo:hi], j.h3[lo:hi])
	} else {
		swigluFwd(j.gate[lo:hi], j.h1[lo:hi], j.h3[lo:hi])
	}
}

// swigluFwdGo is swigluForward's kernel on one range (swigluFwd is the build's version).
func swigluFwdGo(gate, h1, h3 []float32) {
	h1, h3 = h1[:len(gate)], h3[:len(gate)]
	for i, x := range h1 {
		gate[i] = x * sigmoidf(x) * h3[i]
	}
}

// swigluBwdGo is swigluBackward's kernel on one range (swigluBwd is the build's version).
func swigluBwdGo(dh1, dh3, dg, h1, h3 []float32) {
	n := len(dh1)
	dh3, dg, h1, h3 = dh3[:n], dg[:n], h1[:n], h3[:n]
	for i, x := range h1 {
		s := sigmoidf(x)
		dh3[i] = dg[i] * x * s
		dh1[i] = dg[i] * h3[i] * s * (1 + x*(1-s))
	}
}
