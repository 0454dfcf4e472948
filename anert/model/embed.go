package model

// embedForward looks tokens up: x[t, :] = E[id_t, :] for x [n, d], E [vocab, d].
//
// What runs: in a step, embedJob on blocks of rows, in one loop (a chain) with the first
// RMSNorm, which reads those rows (Model.forwardLayers); this function is the same copy serially.
func embedForward(x, e []float32, ids []uint16, d int) {
	embedRows(x, e, ids, d, 0, len(ids))
}

// embedRows is embedForward on the tokens [lo, hi).
func embedRows(x, e []float32, ids []uint16, d, lo, hi int) {
	for t := lo; t < hi; t++ {
		id := int(ids[t])
		copy(x[t*d:(t+1)*d], e[id*d:(id+1)*d])
	}
}

// embedOp is embedForward as a row-local op of a team.rowLoop (the team's job, reused).
func (t *team) embedOp(x, e []float32, ids []uint16, d int) *embedJob {
	t.embed = embedJob{x: x, e: e, ids: ids, d: d}
	return &t.embed
}

type embedJob struct {
	x, e []float32
	ids  []uint16
	d    int
}

func (j *embedJob) Run(_, _, lo, hi int) { embedRows(j.x, j.e, j.ids, j.d, lo, hi) }

// embedBackward scatters the gradient back: dE[id, :] += Σ_{t: id_t = id} dx[t, :], the terms
// added in token order. Tokens repeat ids, so it is split by vocabulary row, not by token: a part
// owns the rows [lo, hi) of dE and scans every token for those ids. Each row then gets its adds in
// token order as serially, bit for bit on any number of goroutines (TestEmbedBackwardThreads).
func embedBackward(t *team, de, dx []float32, ids []uint16, d int) {
	vocab := len(de) / d
	j := &t.embedBwd
	*j = embedBwdJob{de: de, dx: dx, ids: ids, d: d}
	t.run(vocab, t.chunks(vocab, 64), j)
	*j = embedBwdJob{}
}

type embedBwdJob struct {
	de, dx []float32
	ids    []uint16
	d      int
}

func (j *embedBwdJob) Run(_, _, lo, hi int) {
	d := j.d
	for t, id := range j.ids {
		if r := int(id); r >= lo && r < hi {
			g, s := j.de[r*d:(r+1)*d], j.dx[t*d:(t+1)*d]
			for i, v := range s {
				g[i] += v
			}
		}
	}
}

// classifierForward is the tied classifier logits = xf·E_cᵀ for xf [n, d], E_c [vc, d],
// logits [n, vc]. E_c is E itself, or with vocab compaction the rows of the active ids,
// gathered into ec by gatherRows first.
func classifierForward(t *team, logits, xf, ec []float32, n, vc, d int) {
	t.gemms(classifierSpec(logits, xf, ec, n, vc, d))
}

// classifierSpec is the product of classifierForward.
func classifierSpec(logits, xf, ec []float32, n, vc, d int) gemmSpec {
	return gemmSpec{false, true, n, vc, d, 1, xf, d, ec, d, 0, logits, vc, nil, 0, nil}
}

// The classifier's backward is classifierBackwardInput and classifierBackwardWeight (the model
// runs the second as a weight gradient, see Model.weightGrad). With compaction, dE_c is a scratch
// zeroed by the caller and then added into E's gradient with scatterAddRows, so that it is part of
// E's gradient like the input side's (scaled and clipped alike).

// classifierBackwardInput is dxf = dlogits·E_c (overwritten).
func classifierBackwardInput(t *team, dxf, dlogits, ec []float32, n, vc, d int) {
	t.gemms(classifierInputSpec(dxf, dlogits, ec, n, vc, d))
}

// classifierInputSpec is the product of classifierBackwardInput.
func classifierInputSpec(dxf, dlogits, ec []float32, n, vc, d int) gemmSpec {
	return gemmSpec{false, false, n, d, vc, 1, dlogits, vc, ec, d, 0, dxf, d, nil, 0, nil}
}

// classifierBackwardWeight is dE_c += dlogitsᵀ·xf.
func classifierBackwardWeight(t *team, dec, dlogits, xf []float32, n, vc, d int) {
	t.gemms(classifierWeightSpec(dec, dlogits, xf, n, vc, d))
}

// classifierWeightSpec is the product of classifierBackwardWeight (also deferred, Model.deferDW).
func classifierWeightSpec(dec, dlogits, xf []float32, n, vc, d int) gemmSpec {
	return gemmSpec{true, false, vc, d, n, 1, dlogits, vc, xf, d, 1, dec, d, nil, 0, nil}
}

// gatherRows copies dst[c, :] = src[rows[c], :].
func gatherRows(dst, src []float32, rows []int32, d int) {
	for c, r := range rows {
		copy(dst[c*d:(c+1)*d], src[int(r)*d:(int(r)+1)*d])
	}
}

// scatterAddRows adds dst[rows[c], :] += src[c, :] (the backward of gatherRows).
func scatterAddRows(dst, src []float32, rows []int32, d int) {
	for c, r := range rows {
		g, s := dst[int(r)*d:(int(r)+1)*d], src[c*d:(c+1)*d]
		for i, v := range s {
			g[i] += v
		}
	}
}
