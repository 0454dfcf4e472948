package cudab

import (
	"slices"

	"github.com/anelab/anelab/anert/cuda"
)

// PeakGFLOPS is the cuBLAS GEMM rate in the trainer's precision on square n×n products of random
// data (n = 8192 in bf16, 4096 in fp32), the median of 5 timed after 2 untimed: the ceiling
// util_pct is measured against, as the CPU backend's is the sgemm rate measured in its process.
// Measured once and cached.
func (t *Trainer) PeakGFLOPS() (float64, error) {
	if t.peak > 0 {
		return t.peak, nil
	}
	n := 4096
	if t.c.Precision() == cuda.BF16 {
		n = 8192
	}
	err := t.c.Do(func() error {
		var ps [3]cuda.Ptr
		for i := range ps {
			p, err := t.c.Alloc(n * n)
			if err != nil {
				return err
			}
			defer t.c.Free(p)
			ps[i] = p
		}
		// Random-looking data (never zeros: zeros run faster than real data): the weights,
		// repeated.
		for i := range 2 {
			for off := 0; off < n*n; off += t.nw {
				if err := t.c.Copy(ps[i].Add(off), t.w, min(t.nw, n*n-off)); err != nil {
					return err
				}
			}
		}
		tm, err := t.c.NewTimer()
		if err != nil {
			return err
		}
		defer tm.Close()
		var ms []float64
		for i := range 7 {
			tm.Start()
			if err := t.c.Gemm(false, true, n, n, n, 1, ps[0], n, ps[1], n, 0, ps[2], n); err != nil {
				return err
			}
			d, err := tm.Stop()
			if err != nil {
				return err
			}
			if i >= 2 {
				ms = append(ms, float64(d))
			}
		}
		slices.Sort(ms)
		t.peak = 2 * float64(n) * float64(n) * float64(n) / (ms[len(ms)/2] * 1e-3) / 1e9
		return nil
	})
	return t.peak, err
}
