package optim

import (
	"fmt"
	"math"

	"github.com/anelab/anelab/anert/blas"
	"github.com/anelab/anelab/anert/config"
	"github.com/anelab/anelab/anert/tensor"
	"github.com/anelab/anelab/internal/par"
)

// Muon is the optimizer of the original autoresearch and of the modded-nanogpt speedruns (Jordan
// et al. 2024, "Muon: MomentUm Orthogonalized by Newton-Schulz"): the 2-D weight matrices (group
// Matrix) step along the orthogonalised Nesterov momentum; every other parameter (the embedding,
// an untied head, the norm gains) is updated by AdamW with the group's learning rate (see AdamW).
//
// Per matrix W [r, c] with gradient G, momentum μ = MuonMomentum, and the matrices' learning rate
// η = MuonLR·MatrixLRScale·(lr/LR) (lr is the scheduled rate the loop passes to Update: Muon follows
// the same schedule as the AdamW groups):
//
//	M ← μ·M + (1−μ)·G                          (momentum)
//	U = (1−μ)·G + μ·M                          (Nesterov)
//	O = NS5(U)                                 (≈ the orthogonal factor of U's polar decomposition)
//	W ← W·(1 − η·wd) − η·√max(1, r/c)·O
//
// NS5 is five quintic Newton–Schulz iterations on X = U/(‖U‖_F + 1e-7) (transposed first when
// r > c, so that X·Xᵀ is the smaller Gram matrix):
//
//	A = X·Xᵀ;  X ← a·X + (b·A + c·A·A)·X,   (a, b, c) = (3.4445, −4.7750, 2.0315)
//
// which maps every singular value σ ∈ (0, 1] of X through p(σ) = a·σ + b·σ³ + c·σ⁵ five times,
// pushing it into about [0.7, 1.2] while keeping the singular vectors: the update has every
// direction of the momentum at about unit size. √max(1, r/c) keeps the per-element update size
// comparable between tall and wide matrices. The matrices run in float32 through BLAS, each on one
// goroutine (BLAS serial), spread over blas.Threads() goroutines. Cost per update: 5·(4·s²·l + 2·s³)
// FLOPs for an s×l matrix (s ≤ l), 44 GFLOP for the default model, the FLOPs of a forward+backward
// pass over 1024 tokens.
//
// State: "<param>.m" for every parameter (the momentum M for matrices, AdamW's m otherwise) and
// "<param>.v" for the AdamW parameters only.
type Muon struct {
	base
	mat     []bool      // per parameter: a 2-D matrix Muon updates
	m, v    [][]float32 // m: momentum or AdamW m; v: AdamW v (nil for matrices)
	mats    []int       // indices of the matrices
	adam    []chunk     // the AdamW parameters' chunks
	scratch [][]float32 // per goroutine: 2·maxRC + 2·maxS² floats (X, Y, A, B)
	maxRC   int
	maxS    int
}

// The quintic Newton–Schulz coefficients (Jordan et al.) and its iteration count (exported for
// the cuda backend's Muon, which runs the same iteration).
const (
	NSA, NSB, NSC = 3.4445, -4.7750, 2.0315
	NSSteps       = 5
)

// MuonMatrix reports whether Muon updates p as a matrix (orthogonalised momentum): a 2-D
// parameter of group Matrix. Every other parameter is updated by AdamW.
func MuonMatrix(p *tensor.Param) bool {
	return p.Group == tensor.Matrix && len(p.Shape) == 2 && p.Shape[0] > 0 && p.Shape[1] > 0
}

// MuonFactors is the final update's two factors for an r×c matrix: W ← W·decay − step·O with
// η = MuonLR·(lr/LR)·scale (scale and wd the parameter's group's, GroupHyper), step =
// η·√max(1, r/c) and decay = 1 − η·wd, each rounded to float32 once.
func MuonFactors(o config.Optim, lr, scale, wd float64, r, c int) (step, decay float32) {
	eta := o.MuonLR * lr / o.LR * scale
	return float32(eta * math.Sqrt(max(1, float64(r)/float64(c)))), float32(1 - eta*wd)
}

var _ Optimizer = (*Muon)(nil)

func newMuon(b base, ps []*tensor.Param) *Muon {
	u := &Muon{base: b, mat: make([]bool, len(ps)), m: zeros(ps), v: make([][]float32, len(ps))}
	for i, p := range ps {
		if MuonMatrix(p) {
			u.mat[i] = true
			u.mats = append(u.mats, i)
			u.maxRC = max(u.maxRC, p.Size())
			s := min(p.Shape[0], p.Shape[1])
			u.maxS = max(u.maxS, s)
			continue
		}
		u.v[i] = make([]float32, len(p.W))
		u.adam = appendChunks(u.adam, i, len(p.W))
	}
	return u
}

func (u *Muon) Name() string { return "muon" }

// Update applies one update on prepared gradients and zeroes them. See Optimizer.
func (u *Muon) Update(ps []*tensor.Param, lr float64, p Prep) {
	p.check()
	u.update(ps, lr, p, true)
}

func (u *Muon) update(ps []*tensor.Param, lr float64, pr Prep, zero bool) {
	u.check(ps)
	u.t++
	t := float64(u.t)
	o := u.o
	bc1, bc2 := 1-math.Pow(o.Beta1, t), 1-math.Pow(o.Beta2, t)
	b1, b2, eps := float32(o.Beta1), float32(o.Beta2), float32(o.Eps)
	a1, a2 := float32(1-o.Beta1), float32(1-o.Beta2)
	parallel(u.threads, u.adam, func(c chunk) {
		plr := lr * u.scale[c.p]
		adamUpdate(ps[c.p].W[c.lo:c.hi], ps[c.p].G[c.lo:c.hi], u.m[c.p][c.lo:c.hi], u.v[c.p][c.lo:c.hi], pr.Unscale, pr.Clip,
			float32(plr/bc1), float32(1/bc2), float32(1-plr*u.wd[c.p]), b1, a1, b2, a2, eps, zero)
	})
	if len(u.mats) == 0 {
		return
	}
	blas.SetSerial(true) // one matrix per goroutine, as the model's GEMMs (see model.beginStep)
	w := min(par.Threads(u.threads), len(u.mats))
	for len(u.scratch) < w {
		u.scratch = append(u.scratch, make([]float32, 2*u.maxRC+2*u.maxS*u.maxS))
	}
	par.Each(w, len(u.mats), func(k, j int) {
		i := u.mats[j]
		p := ps[i]
		step, decay := MuonFactors(o, lr, u.scale[i], u.wd[i], p.Shape[0], p.Shape[1])
		muonUpdate(p.W, p.G, u.m[i], p.Shape[0], p.Shape[1], pr.Unscale, pr.Clip, zero, float32(o.MuonMomentum), step, decay, u.scratch[k])
	})
}

// muonUpdate is one matrix's Muon step (see Muon) on the gradient G' = (G·gu)·gc (Prep's factors),
// with the factors of MuonFactors (W ← W·f − step·O); with zero it writes 0 over each gradient as
// it reads it. scratch holds at least 2·r·c + 2·min(r, c)² floats.
func muonUpdate(w, g, m []float32, r, c int, gu, gc float32, zero bool, mu float32, step, f float32, scratch []float32) {
	n := r * c
	s, l := min(r, c), max(r, c) // X is s×l
	x, y := scratch[:n], scratch[n:2*n]
	a, b := scratch[2*n:2*n+s*s], scratch[2*n+s*s:2*n+2*s*s]
	am := 1 - mu
	// momentum and the Nesterov mix, into x (transposed when r > c) and its squared norm
	var ss float64
	for i := range r {
		for j := range c {
			k := i*c + j
			gk := (g[k] * gu) * gc
			if zero {
				g[k] = 0
			}
			mk := mu*m[k] + am*gk
			m[k] = mk
			uk := am*gk + mu*mk
			if r > c {
				x[j*r+i] = uk
			} else {
				x[k] = uk
			}
			ss += float64(uk) * float64(uk)
		}
	}
	inv := float32(1 / (math.Sqrt(ss) + 1e-7))
	for i := range x {
		x[i] *= inv
	}
	newtonSchulz(x, y, a, b, s, l)
	for i := range r {
		for j := range c {
			k := i*c + j
			o := x[k]
			if r > c {
				o = x[j*r+i]
			}
			w[k] = w[k]*f - step*o
		}
	}
}

// newtonSchulz runs the NSSteps quintic iterations on x [s, l] (s ≤ l) in place, with y [s, l] and
// a, b [s, s] as scratch: A = X·Xᵀ, B = b·A + c·A·A, X ← a·X + B·X.
func newtonSchulz(x, y, a, b []float32, s, l int) {
	for range NSSteps {
		blas.Sgemm(false, true, s, s, l, 1, x, l, x, l, 0, a, s)
		for i := range a[:s*s] {
			b[i] = NSB * a[i]
		}
		blas.Sgemm(false, false, s, s, s, NSC, a, s, a, s, 1, b, s)
		copy(y[:s*l], x[:s*l])
		blas.Sgemm(false, false, s, l, s, 1, b, s, y, l, NSA, x, l)
	}
}

// State is "<param>.m" for every parameter, then "<param>.v" for the AdamW (non-matrix) ones.
func (u *Muon) State() []NamedTensor {
	out := u.state([]string{".m"}, u.m)
	for i, name := range u.names {
		if !u.mat[i] {
			out = append(out, NamedTensor{name + ".v", u.v[i]})
		}
	}
	return out
}

// SetState restores what State wrote: exactly those buffers, each of its parameter's length.
func (u *Muon) SetState(t int, state []NamedTensor) error {
	if t < 0 {
		return fmt.Errorf("optim: SetState: update count t = %d must be ≥ 0", t)
	}
	want := map[string][]float32{}
	var order []string
	for i, name := range u.names {
		want[name+".m"] = u.m[i]
		order = append(order, name+".m")
	}
	for i, name := range u.names {
		if !u.mat[i] {
			want[name+".v"] = u.v[i]
			order = append(order, name+".v")
		}
	}
	got := make(map[string][]float32, len(state))
	for _, s := range state {
		if _, dup := got[s.Name]; dup {
			return fmt.Errorf("optim: SetState: state %s appears twice", s.Name)
		}
		dst, ok := want[s.Name]
		if !ok {
			return fmt.Errorf("optim: SetState: saved state %s is no muon buffer of this model "+
				"(written by another optimizer or model? then start from fresh optimizer state)", s.Name)
		}
		if len(s.Data) != len(dst) {
			return fmt.Errorf("optim: SetState: %s has %d elements, the parameter has %d", s.Name, len(s.Data), len(dst))
		}
		got[s.Name] = s.Data
	}
	for _, name := range order {
		if _, ok := got[name]; !ok {
			return fmt.Errorf("optim: SetState: the saved state lacks %s, which muon needs "+
				"(written by another optimizer? then start from fresh optimizer state)", name)
		}
	}
	for _, name := range order {
		copy(want[name], got[name])
	}
	u.t = t
	return nil
}
