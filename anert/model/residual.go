package model

// residualForward is the scaled residual add out = x + α·y over n elements (α = 1/√(2·layers)).
func residualForward(out, x, y []float32, alpha float32, n, w int) {
	parallelFor(w, n, 64, func(_, lo, hi int) {
		o, a, b := out[lo:hi], x[lo:hi], y[lo:hi]
		for i := range o {
			o[i] = a[i] + alpha*b[i]
		}
	})
}

// residualBackward is its backward for the branch: dy = α·dout. The skip path's gradient is dout
// itself, which the caller keeps accumulating in place (dx = dout).
func residualBackward(dy, dout []float32, alpha float32, n, w int) {
	parallelFor(w, n, 64, func(_, lo, hi int) {
		d, g := dy[lo:hi], dout[lo:hi]
		for i := range d {
			d[i] = alpha * g[i]
		}
	})
}
