package model

import (
	"github.com/anelab/anelab/anert/config"
	"github.com/anelab/anelab/anert/tensor"
	"github.com/anelab/anelab/internal/par"
)

// Transposed weights (cpuTune.transW, ANELAB_CPU_TUNE's wt). The forward projections are
// y = x·Wᵀ with W [out, in] row-major, so their GEMM blocks read op(B) = Wᵀ; oneDNN's no-copy
// kernels, which the step's small blocks run in, are slower at that than at reading B as it lies
// (the backward's dx = dy·W) at the same shapes (anert/bench/RESULTS.md). With wt the model
// keeps Wᵀ [in, out] of every layer matrix beside W, and the CPU backend's forward products read
// it: y = x·(Wᵀ), an untransposed product.
//
// Keeping the copies current costs one more write of the weights a step, and it is paid where
// the weights are written anyway: a deferred update's part (update.go), having updated a range
// of W's rows, writes those rows into Wᵀ's columns while they are still in its core's cache; the
// forward pass's fence before a layer waits for both. The parts cover every element, so after a
// deferred update the copies are current whatever they held before. A forward pass that does not
// follow one (an evaluation, a second micro-step, a step after an update in place or a
// checkpoint load) rewrites them all first, in one loop: the model cannot see writes made outside
// it, so it trusts its copies only where it wrote them itself. Only a model whose CPU step
// defers its update (many cores: DefersUpdate) keeps copies: in place, every step would pay that
// loop. A split step's replicas never do (they read their parent's W).

// wtState is a model's transposed copies.
type wtState struct {
	of     [][]float32 // Params()[i]'s copy, nil for a parameter without one
	rows   []int       // Params()[i]'s rows (out)
	layers []LayerT    // Layer l's copies (Layer.T points here during a forward pass that reads them)
	fresh  bool        // a deferred update that writes the copies has been taken since the last forward pass
	job    wtJob
}

// LayerT is a layer's transposed matrices (Layer.T): Wq [D, D] as Wqᵀ, …, W1, W3 [F, D] as
// [D, F], W2 [D, F] as [F, D]. W3 is nil for a plain MLP.
type LayerT struct{ Wq, Wk, Wv, Wo, W1, W3, W2 []float32 }

// keepsWT reports whether a forward pass on w goroutines reads transposed copies.
func (m *Model) keepsWT(w int) bool { return !m.replica && keepsWTOn(m.backend, w) }

// keepsWTOn reports whether a model (not a replica) on backend b keeps copies on w goroutines:
// with wt, where its update is deferred (DefersUpdate).
func keepsWTOn(b Backend, w int) bool {
	return tune.transW && tune.update && defersOn(b, w)
}

// currentWT makes the copies current for a forward pass on w goroutines, or drops them from the
// layers when this pass does not read them. Called before the pass's first fence.
func (m *Model) currentWT(w int) {
	wt := &m.wt
	fresh := wt.fresh
	wt.fresh = false
	if !m.keepsWT(w) {
		m.staleWT()
		return
	}
	if !fresh {
		if wt.of == nil {
			m.allocWT()
		}
		m.FinishUpdate() // the copies are rewritten from the updated weights
		wt.job = wtJob{m: m}
		n := len(m.params)
		m.team.run(n, n, &wt.job)
	}
	for l := range m.Layers {
		m.Layers[l].T = &wt.layers[l]
	}
}

// staleWT stops the layers reading the copies until the next forward pass has made them current
// (WeightsChanged: the weights changed outside the model).
func (m *Model) staleWT() {
	if m.wt.of != nil {
		for l := range m.Layers {
			m.Layers[l].T = nil
		}
		m.wt.fresh = false
	}
}

// allocWT makes room for the copies of every layer matrix.
func (m *Model) allocWT() {
	wt := &m.wt
	wt.of, wt.rows = make([][]float32, len(m.params)), make([]int, len(m.params))
	wt.layers = make([]LayerT, len(m.Layers))
	idx := make(map[*tensor.Param]int, len(m.params))
	for i, p := range m.params {
		idx[p] = i
	}
	copyOf := func(p *tensor.Param) []float32 {
		if p == nil {
			return nil
		}
		i := idx[p]
		wt.of[i], wt.rows[i] = make([]float32, p.Size()), p.Shape[0]
		return wt.of[i]
	}
	for l := range m.Layers {
		y := &m.Layers[l]
		wt.layers[l] = LayerT{Wq: copyOf(y.Wq), Wk: copyOf(y.Wk), Wv: copyOf(y.Wv), Wo: copyOf(y.Wo),
			W1: copyOf(y.W1), W3: copyOf(y.W3), W2: copyOf(y.W2)}
	}
}

// transposeRange writes elements [lo, hi) of Params()[i] (row-major [rows, cols]) into its copy:
// Wᵀ[c, r] = W[r, c]. Nothing for a parameter without a copy.
func (wt *wtState) transposeRange(w []float32, i, lo, hi int) {
	t := wt.of[i]
	if t == nil {
		return
	}
	rows := wt.rows[i]
	cols := len(w) / rows
	// A partial first and last row element by element, the whole rows between by the kernel.
	for lo < hi && lo%cols != 0 {
		r, c0 := lo/cols, lo%cols
		c1 := min(cols, c0+hi-lo)
		for c, x := range w[r*cols+c0 : r*cols+c1] {
			t[(c0+c)*rows+r] = x
		}
		lo += c1 - c0
	}
	r0, r1 := lo/cols, hi/cols
	transposeRows(t, w, rows, cols, r0, r1)
	if lo = max(lo, r1*cols); lo < hi {
		for c, x := range w[lo:hi] {
			t[c*rows+r1] = x
		}
	}
}

// transposeRowsGo is Wᵀ[c, r] = W[r, c] for the rows [r0, r1) of W [rows, cols]: the !cgo build's
// kernel and the C kernel's reference.
func transposeRowsGo(t, w []float32, rows, cols, r0, r1 int) {
	for r := r0; r < r1; r++ {
		for c, x := range w[r*cols : (r+1)*cols] {
			t[c*rows+r] = x
		}
	}
}

// wtJob rewrites the copies of the parameters [lo, hi).
type wtJob struct{ m *Model }

func (j *wtJob) Run(_, _, lo, hi int) {
	for i := lo; i < hi; i++ {
		if p := j.m.params[i]; j.m.wt.of[i] != nil {
			j.m.wt.transposeRange(p.W, i, 0, p.Size())
		}
	}
}

// TransposedFloats is the floats of the transposed copies the model keeps on its thread budget
// (0 when it keeps none): for a memory table (anert/bench's Need).
func (m *Model) TransposedFloats() int {
	return transposedFloats(m.cfg, m.backend, par.Threads(m.threads))
}

// TransposedFloatsOf is TransposedFloats for a model of cfg on the CPU backend with a thread
// budget of threads (0: all cores), before it is built: for a memory check (anert/train's
// CheckMemory).
func TransposedFloatsOf(cfg config.Model, threads int) int {
	if loadTune() != nil {
		return 0 // New reports the bad ANELAB_CPU_TUNE
	}
	return transposedFloats(cfg, NewCPU(), par.Threads(threads))
}

// transposedFloats is the layer matrices' floats when a model of cfg on backend b keeps copies
// on w goroutines (keepsWT), else 0.
func transposedFloats(cfg config.Model, b Backend, w int) int {
	if !keepsWTOn(b, w) {
		return 0
	}
	return layerMatrixFloats(cfg)
}
