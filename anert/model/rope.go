package model

import "math"

// ropeTables returns cos and sin [seq, hd/2] of the rotary angles θ_{p,i} = p·base^(−2i/hd),
// computed in float64 and rounded once.
func ropeTables(seq, hd int, base float64) (cos, sin []float32) {
	half := hd / 2
	cos, sin = make([]float32, seq*half), make([]float32, seq*half)
	for p := range seq {
		for i := range half {
			th := float64(p) * math.Pow(base, -2*float64(i)/float64(hd))
			cos[p*half+i], sin[p*half+i] = float32(math.Cos(th)), float32(math.Sin(th))
		}
	}
	return cos, sin
}

// ropeForward rotates, in place, every adjacent pair (2i, 2i+1) of every head of x [n, d]
// (row r is token r mod T of its sequence, so its position is p = r mod T):
//
//	(a, b) ← (a·cos θ − b·sin θ,  a·sin θ + b·cos θ),   θ = θ_{p,i} (see ropeTables).
func ropeForward(x, cos, sin []float32, n, T, d, hd, w int) {
	half := hd / 2
	parallelFor(w, n, 4, func(_, lo, hi int) {
		for r := lo; r < hi; r++ {
			p := r % T
			c, s := cos[p*half:(p+1)*half], sin[p*half:(p+1)*half]
			row := x[r*d : (r+1)*d]
			for h := 0; h < d; h += hd {
				v := row[h : h+hd]
				for i := range half {
					a, b := v[2*i], v[2*i+1]
					v[2*i], v[2*i+1] = a*c[i]-b*s[i], a*s[i]+b*c[i]
				}
			}
		}
	})
}

// ropeBackward maps, in place, the gradient w.r.t. the rotated vector to the gradient w.r.t. the
// unrotated one: the rotation is orthogonal, so this is the rotation by −θ:
//
//	(da, db) ← (da·cos θ + db·sin θ,  −da·sin θ + db·cos θ).
func ropeBackward(dx, cos, sin []float32, n, T, d, hd, w int) {
	half := hd / 2
	parallelFor(w, n, 4, func(_, lo, hi int) {
		for r := lo; r < hi; r++ {
			p := r % T
			c, s := cos[p*half:(p+1)*half], sin[p*half:(p+1)*half]
			row := dx[r*d : (r+1)*d]
			for h := 0; h < d; h += hd {
				v := row[h : h+hd]
				for i := range half {
					a, b := v[2*i], v[2*i+1]
					v[2*i], v[2*i+1] = a*c[i]+b*s[i], -a*s[i]+b*c[i]
				}
			}
		}
	})
}
