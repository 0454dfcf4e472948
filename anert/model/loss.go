package model

import "math"

// softcapForward is the logit soft-cap over one row: z_j = c·tanh(l_j/c) (z may alias l).
func softcapForward(z, l []float32, c float32) {
	inv := 1 / c
	for j, x := range l {
		z[j] = c * tanhf(x*inv)
	}
}

// softcapBackward is its backward, written in terms of the capped z: since
// dz/dl = 1 − tanh²(l/c) = 1 − (z/c)²,  dl_j = dz_j·(1 − (z_j/c)²) (dl may alias dz).
func softcapBackward(dl, dz, z []float32, c float32) {
	inv := 1 / c
	for j, g := range dz {
		u := z[j] * inv
		dl[j] = g * (1 - u*u)
	}
}

// crossEntropyForward is the cross-entropy of softmax(z) against class tgt for one row:
//
//	m = max_j z_j,  e_j = exp(z_j − m),  S = Σ_j e_j,  loss = m + log S − z_tgt.
//
// It returns loss and S, and leaves e in e (scratch of len(z)) for the backward pass.
func crossEntropyForward(e, z []float32, tgt int) (loss float64, sum float32) {
	m := z[0]
	for _, x := range z[1:] {
		m = max(m, x)
	}
	e = e[:len(z)]
	for j, x := range z {
		e[j] = expf(x - m)
		sum += e[j]
	}
	return float64(m) + math.Log(float64(sum)) - float64(z[tgt]), sum
}

// crossEntropyBackward is its backward, scaled: dz_j = scale·(e_j/S − [j = tgt]), where
// e_j/S = softmax(z)_j (dz may alias e). The model uses scale = gradScale/N, N the number of
// tokens the loss averages over.
func crossEntropyBackward(dz, e []float32, sum float32, tgt int, scale float32) {
	k := scale / sum
	for j, v := range e {
		dz[j] = k * v
	}
	dz[tgt] -= scale
}

// softcapCrossEntropyBackward is crossEntropyBackward followed by softcapBackward on one row, in
// place in z (the capped logits), fused since softcapBackward needs z:
//
//	z_j ← scale·(e_j/S − [j = tgt])·(1 − (z_j/c)²).
func softcapCrossEntropyBackward(z, e []float32, sum float32, tgt int, scale, c float32) {
	k, inv := scale/sum, 1/c
	e = e[:len(z)]
	for j, x := range z {
		g := k * e[j]
		if j == tgt {
			g -= scale
		}
		u := x * inv
		z[j] = g * (1 - u*u)
	}
}
