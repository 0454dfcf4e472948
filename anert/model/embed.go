package model

// embedForward looks tokens up: x[t, :] = E[id_t, :] for x [n, d], E [vocab, d].
func embedForward(x, e []float32, ids []uint16, d int) {
	for t, id := range ids {
		copy(x[t*d:(t+1)*d], e[int(id)*d:(int(id)+1)*d])
	}
}

// embedBackward scatters the gradient back: dE[id_t, :] += dx[t, :] (sequential, since ids repeat).
func embedBackward(de, dx []float32, ids []uint16, d int) {
	for t, id := range ids {
		g, r := de[int(id)*d:(int(id)+1)*d], dx[t*d:(t+1)*d]
		for i, v := range r {
			g[i] += v
		}
	}
}

// classifierForward is the tied classifier logits = xf·E_cᵀ for xf [n, d], E_c [vc, d],
// logits [n, vc]. E_c is E itself, or with vocab compaction the rows of the active ids,
// gathered into ec by gatherRows first.
func classifierForward(t *team, logits, xf, ec []float32, n, vc, d int) {
	t.gemm(false, true, n, vc, d, 1, xf, d, ec, d, 0, logits, vc)
}

// The classifier's backward is classifierBackwardInput and classifierBackwardWeight (the model
// runs the second as a weight gradient, see Model.weightGrad). With compaction, dE_c is a scratch
// zeroed by the caller and then added into E's gradient with scatterAddRows, so that it is part of
// E's gradient like the input side's (scaled and clipped alike).

// classifierBackwardInput is dxf = dlogits·E_c (overwritten).
func classifierBackwardInput(t *team, dxf, dlogits, ec []float32, n, vc, d int) {
	t.gemm(false, false, n, d, vc, 1, dlogits, vc, ec, d, 0, dxf, d)
}

// classifierBackwardWeight is dE_c += dlogitsᵀ·xf.
func classifierBackwardWeight(t *team, dec, dlogits, xf []float32, n, vc, d int) {
	t.gemm(true, false, vc, d, n, 1, dlogits, vc, xf, d, 1, dec, d)
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
