package model

// swigluForward is the SwiGLU gate over n elements, with σ(x) = 1/(1+e⁻ˣ):
//
//	gate = silu(h1) ⊙ h3 = h1·σ(h1)·h3.
func swigluForward(gate, h1, h3 []float32, n, w int) {
	parallelFor(w, n, 64, func(_, lo, hi int) {
		g, a, b := gate[lo:hi], h1[lo:hi], h3[lo:hi]
		for i, x := range a {
			g[i] = x * sigmoidf(x) * b[i]
		}
	})
}

// swigluBackward is the backward of swigluForward (σ recomputed from h1):
//
//	dh1 = dgate · h3 · σ(h1) · (1 + h1·(1 − σ(h1))),   dh3 = dgate · h1 · σ(h1).
func swigluBackward(dh1, dh3, dgate, h1, h3 []float32, n, w int) {
	parallelFor(w, n, 64, func(_, lo, hi int) {
		d1, d3, dg, a, b := dh1[lo:hi], dh3[lo:hi], dgate[lo:hi], h1[lo:hi], h3[lo:hi]
		for i, x := range a {
			s := sigmoidf(x)
			d3[i] = dg[i] * x * s
			d1[i] = dg[i] * b[i] * s * (1 + x*(1-s))
		}
	})
}
