package model

import "math"

// softcapForward is the logit soft-cap over one row: z_j = c·tanh(l_j/c) (z may alias l).
func softcapForward(z, l []float32, c float32) {
	inv := 1 / c
	for j, x := range l {
		z[j] = c * tanhf(x*inv)
	}
}

// softcapCEGo is the training head's loss over rows rows of logits l [rows, ncols] in place: per
// row, the soft-cap z = c·tanh(l/c) (when capc = c > 0; softcapForward), then the cross-entropy of
// softmax(z) against the target, and with train the row is overwritten with dl = scale·∂loss/∂l:
//
//	m = max_j z_j,  e_j = exp(z_j − m),  S = Σ_j e_j (summed in float64),  loss = m + log S − z_tgt,
//	dl_j = scale·(e_j/S − [j = tgt])·(1 − (z_j/c)²)     (without the last factor when capc = 0),
//
// since dz_j/dl_j = 1 − tanh²(l_j/c) = 1 − (z_j/c)². e_j is recomputed rather than stored. S is
// accumulated in float64: in float32, terms below half an ulp of the running sum are dropped,
// which biases the loss by ~1e-6 relative at a vocabulary of 4096 and more at 32K. It returns the
// sum of the rows' losses. This is the formula: the !cgo build's kernel and the reference of the C
// kernel the cgo build runs (anelab_softcap_ce; TestKernelsMatchGo compares them).
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
		var sum float64
		for _, x := range r {
			sum += float64(expf(x - m))
		}
		zt := r[t]
		total += float64(m) + math.Log(sum) - float64(zt)
		if !train {
			continue
		}
		k := float32(float64(scale) / sum)
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

// lossJob is the head's loss over rows of logits, each part's loss sum in part[p]. What runs
// (Model.head): lossJob.Run on blocks of rows (the team's goroutines) → softcapCE:
// anelab_softcap_ce in kernels.c on cgo builds, softcapCEGo above without cgo.
type lossJob struct {
	logits      []float32
	tgt         []int32
	part        []float64
	c           int
	capc, scale float32
	train       bool
}

// prepare makes j.part one sum per part for a loop of parts blocks of rows (as a rowPost, the
// classifier grid's; Model.ensure sizes the buffer for one per row).
func (j *lossJob) prepare(parts int) {
	j.part = j.part[:parts]
	clear(j.part)
}

// spreadRows marks j as a rowPost with work enough per row that its grid gets a block of rows
// per goroutine at least (lonePlan), so that no goroutine runs more than its share of it.
func (j *lossJob) spreadRows() {}

func (j *lossJob) Run(_, p, lo, hi int) {
	j.part[p] = softcapCE(j.logits[lo*j.c:hi*j.c], hi-lo, j.c, j.tgt[lo:hi], j.capc, j.scale, j.train)
}
