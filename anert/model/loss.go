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

// softcapCEGo is the training head's loss over rows rows of logits l [rows, ncols] in place:
// per row, z = softcapForward(l) (when capc > 0), loss = crossEntropyForward(z, tgt), and with
// train the row is overwritten with dl, crossEntropyBackward then softcapBackward fused:
//
//	dl_j = scale·(e_j/S − [j = tgt])·(1 − (z_j/c)²)     (without the last factor when capc = 0),
//
// e_j = exp(z_j − max z) recomputed rather than stored. It returns the sum of the rows' losses.
// softcapCE is the build's version.
func softcapCEGo(z []float32, rows, ncols int, tgt []int32, capc, scale float32, train bool) float64 {
	var total float64
	var inv float32
	if capc > 0 {
		inv = 1 / capc
	}
	for i := range rows {
		r, t := z[i*ncols:(i+1)*ncols], int(tgt[i])
		if capc > 0 {
			softcapForward(r, r, capc)
		}
		m := r[0]
		for _, x := range r[1:] {
			m = max(m, x)
		}
		var sum float32
		for _, x := range r {
			sum += expf(x - m)
		}
		zt := r[t]
		total += float64(m) + math.Log(float64(sum)) - float64(zt)
		if !train {
			continue
		}
		k := scale / sum
		for j, x := range r {
			g := k * expf(x-m)
			if j == t {
				g -= scale
			}
			if capc > 0 {
				u := x * inv
				g *= 1 - u*u
			}
			r[j] = g
		}
	}
	return total
}

// lossJob is the head's loss over rows of logits, each part's loss sum in part[p].
type lossJob struct {
	logits      []float32
	tgt         []int32
	part        []float64
	c           int
	capc, scale float32
	train       bool
}

func (j *lossJob) run(_, p, lo, hi int) {
	j.part[p] = softcapCE(j.logits[lo*j.c:hi*j.c], hi-lo, j.c, j.tgt[lo:hi], j.capc, j.scale, j.train)
}
