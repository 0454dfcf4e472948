package model

import "math"

// rmsnormForward normalises each of the n rows of x [n, d]:
//
//	r_t = (Σ_i x_{t,i}²/d + ε)^(−1/2),   out_{t,i} = g_i · x_{t,i} · r_t,
//
// and saves r_t in rinv [n] for the backward pass. Rows are split over w goroutines.
func rmsnormForward(out, rinv, x, g []float32, n, d int, eps float32, w int) {
	parallelFor(w, n, 4, func(_, lo, hi int) {
		for t := lo; t < hi; t++ {
			xr, or := x[t*d:(t+1)*d], out[t*d:(t+1)*d]
			var ss float32
			for _, v := range xr {
				ss += v * v
			}
			r := float32(1 / math.Sqrt(float64(ss/float32(d)+eps)))
			rinv[t] = r
			for i, v := range xr {
				or[i] = g[i] * v * r
			}
		}
	})
}

// rmsnormBackward is the exact backward of rmsnormForward for any gains. Given dout [n, d] it
// ADDS to dx (so the caller can pre-load the residual path's gradient) and to dg:
//
//	dx_{t,i} += r_t · (g_i·dy_{t,i} − x_{t,i} · r_t² · (Σ_j g_j·dy_{t,j}·x_{t,j}) / d)
//	dg_i     += Σ_t dy_{t,i} · x_{t,i} · r_t
//
// part is scratch of at least w·d floats for the per-goroutine partial sums of dg.
func rmsnormBackward(dx, dg, dout, x, rinv, g []float32, n, d int, part []float32, w int) {
	chunks := max(1, min(w, n/4)) // the same split parallelFor makes
	clear(part[:chunks*d])
	parallelFor(chunks, n, 4, func(k, lo, hi int) {
		pg := part[k*d : (k+1)*d]
		for t := lo; t < hi; t++ {
			xr, dyr, dxr := x[t*d:(t+1)*d], dout[t*d:(t+1)*d], dx[t*d:(t+1)*d]
			r := rinv[t]
			var dot float32
			for i, v := range xr {
				dot += g[i] * dyr[i] * v
				pg[i] += dyr[i] * v * r
			}
			c := r * r * dot / float32(d)
			for i, v := range xr {
				dxr[i] += r * (g[i]*dyr[i] - v*c)
			}
		}
	})
	for k := range chunks {
		for i, v := range part[k*d : (k+1)*d] {
			dg[i] += v
		}
	}
}
