package cudab

import "github.com/anelab/anelab/anert/cuda"

// PeakGFLOPS is the cuBLAS GEMM rate in the trainer's precision on square n×n products of random
// data (n = 8192 in bf16, 4096 in fp32; bf16 operands in bf16 mode, fp32 tensors rounded on load
// in bf16-fast16bf), the median of 5 timed after 2 untimed: the ceiling
// util_pct is measured against, as the CPU backend's is the sgemm rate measured in its process.
// Measured once and cached.
func (t *Trainer) PeakGFLOPS() (float64, error) {
	if t.peak > 0 {
		return t.peak, nil
	}
	n := 4096
	if t.c.Precision() != cuda.FP32 {
		n = 8192
	}
	// Operands as the trainer's GEMMs have them, and the 4-byte words of the weights they are
	// filled from.
	dt, src, srcWords := cuda.TypeF32, t.w, t.nw
	if t.bf {
		dt, src, srcWords = cuda.TypeBF16, t.wb, t.nw/2
	}
	words := n * n * dt.Size() / 4
	err := t.c.Do(func() error {
		var ps [3]cuda.Ptr
		for i := range ps {
			p, err := t.c.AllocBytes(n * n * dt.Size())
			if err != nil {
				return err
			}
			defer t.c.Free(p)
			ps[i] = p
		}
		// Random-looking data (never zeros: zeros run faster than real data): the weights,
		// repeated.
		for i := range 2 {
			for off := 0; off < words; off += srcWords {
				if err := t.c.Copy(ps[i].Add(off), src, min(srcWords, words-off)); err != nil {
					return err
				}
			}
		}
		compute := t.c.Precision().F32Compute()
		if t.bf {
			compute = cuda.Compute32F
		}
		tm, err := t.c.NewTimer()
		if err != nil {
			return err
		}
		defer tm.Close()
		op := func(p cuda.Ptr) cuda.Operand { return cuda.Operand{P: p, Type: dt, LD: n} }
		ms, err := tm.Median(2, 5, func() error {
			return t.c.GemmTyped(false, true, n, n, n, 1, op(ps[0]), op(ps[1]), 0, op(ps[2]), compute, 1)
		})
		if err != nil {
			return err
		}
		t.peak = 2 * float64(n) * float64(n) * float64(n) / (ms * 1e-3) / 1e9
		return nil
	})
	return t.peak, err
}
