package blas

import "github.com/anelab/anelab/internal/par"

// sgemmGo is the portable Sgemm: C = beta·C, then C += (alpha·op(A))·op(B), blocked over k and n
// so that a packed panel of alpha·op(B) stays in cache, with the rows of C split over workers
// goroutines. It is correct for any strides and transposes; it is not fast (about 1–3 GFLOP/s a core).
func sgemmGo(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int,
	b []float32, ldb int, beta float32, c []float32, ldc int, workers int) {
	scaleC(m, n, beta, c, ldc)
	const kb, nb = 128, 512
	panel := make([]float32, min(kb, k)*min(nb, n))
	workers = max(1, min(workers, m/8))
	for p0 := 0; p0 < k; p0 += kb {
		pk := min(kb, k-p0)
		for j0 := 0; j0 < n; j0 += nb {
			pn := min(nb, n-j0)
			// panel[p][j] = op(B)[p0+p][j0+j]
			for p := range pk {
				row := panel[p*pn : (p+1)*pn]
				for j := range row {
					if transB {
						row[j] = b[(j0+j)*ldb+p0+p]
					} else {
						row[j] = b[(p0+p)*ldb+j0+j]
					}
				}
			}
			rows := func(lo, hi int) {
				for i := lo; i < hi; i++ {
					crow := c[i*ldc+j0 : i*ldc+j0+pn]
					for p := range pk {
						var aip float32
						if transA {
							aip = alpha * a[(p0+p)*lda+i]
						} else {
							aip = alpha * a[i*lda+p0+p]
						}
						brow := panel[p*pn : (p+1)*pn]
						for j, bv := range brow {
							crow[j] += aip * bv
						}
					}
				}
			}
			if workers == 1 {
				rows(0, m)
				continue
			}
			par.For(workers, m, 8, func(_, lo, hi int) { rows(lo, hi) })
		}
	}
}
