package cudab

import (
	"fmt"

	"github.com/anelab/anelab/anert/cuda"
	"github.com/anelab/anelab/anert/optim"
	"github.com/anelab/anelab/anert/tensor"
)

// Muon on the GPU: the same update as optim.Muon (anert/optim/muon.go), step for step. The
// non-matrix parameters go through the adamw kernel exactly as AdamW's do (Update); for the 2-D
// weight matrices (optim.MuonMatrix), per group of matrices whose Newton–Schulz operand has one
// shape [s, l] (s ≤ l; a tall r×c matrix is transposed, so W1 [F, D] and W2 [D, F] share a group):
//
//	muon_momentum   M ← μ·M + (1−μ)·G;  U = (1−μ)·G + μ·M → X (transposed when tall); Σ U² per block (double)
//	muon_scale      X ← X/(‖U‖_F + 1e-7)   (the block sums added in a fixed order: deterministic)
//	NSSteps × (strided batched GEMMs over the group, X [k, s, l]):
//	                A = X·Xᵀ;  B = b·A (scale_to);  B ← c·A·A + B;  Y = X (copy);  X ← B·Y + a·X
//	muon_update     W ← W·(1 − η·wd) − η·√max(1, r/c)·O   (and the bf16 copy in the same pass)
//
// with (a, b, c) = optim.NSA, NSB, NSC and the factors of optim.MuonFactors, so the formulas
// cannot drift apart. The GEMMs are those of the CPU's newtonSchulz in the same order, on fp32
// tensors in the context's fp32 compute type: pedantic fp32 in cuda-fp32 (agreement with the CPU
// to fp32 rounding), and in both bf16 modes COMPUTE_32F_FAST_16BF, operands rounded to bf16 as
// cuBLAS loads them with fp32 accumulation and fp32 results. That is the field's choice (Keller
// Jordan's Muon runs Newton–Schulz in bf16: the iteration only has to push singular values into
// about [0.7, 1.2], which bf16's 8 bits do) while X stays fp32 between iterations, so no
// conversion kernels are needed; bf16 operand buffers would halve the bytes the GEMMs read (a
// possible next step, not measured). Cost per update as on the CPU: 5·(4·s²·l + 2·s³) FLOPs per
// matrix, 0.84 TFLOP at the original shape.
//
// State is the host optimizer's: the momentum in the flat m buffer at each matrix's offset,
// AdamW's m and v for the other parameters in the flat m and v buffers (optSlots), so
// checkpoints round-trip through the host model as Lion's and AdamW's do.

// muonChunkFloats bounds one batch's X (k·s·l floats, 256 MiB): a group larger than that runs
// as several batches, so the scratch stays bounded for large models.
const muonChunkFloats = 1 << 26

// muonMaxBlocks is the most blocks per matrix of the element-wise Muon kernels (a chunk of k
// matrices launches k·nb blocks).
const muonMaxBlocks = 64

// muonChunk is one batch of same-shape matrices: their parameter indices and whether each is
// stored tall ([l, s], X its transpose), tab's place in the device table and the blocks per matrix.
type muonChunk struct {
	s, l   int
	params []int
	tall   []bool
	tabOff int // offset of its 2·k int32 entries (element offset, tall) in the device table
	nb     int
}

// muonPlan groups the matrices ps that Muon orthogonalises by the shape [s, l] of their
// operand X (groups in order of first appearance, matrices in Params order) and splits each group
// into chunks of at most limit floats of X. tab is the device table (per matrix: its element
// offset offs[i], 1 if tall); maxX, maxA and maxPart are the scratch sizes the largest chunk
// needs (X and Y: k·s·l floats; A and B: k·s²; the partial sums: k·nb doubles).
func muonPlan(ps []*tensor.Param, offs []int, limit int) (chunks []muonChunk, tab []int32, maxX, maxA, maxPart int, err error) {
	type key struct{ s, l int }
	var order []key
	groups := map[key][]int{}
	for i, p := range ps {
		if !optim.MuonMatrix(p) {
			continue
		}
		r, c := p.Shape[0], p.Shape[1]
		k := key{min(r, c), max(r, c)}
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], i)
		if int(int32(offs[i]+r*c)) != offs[i]+r*c {
			return nil, nil, 0, 0, 0, fmt.Errorf("cudab: muon: parameter %s ends at element %d, beyond the int32 offsets of the Muon kernels' table", p.Name, offs[i]+r*c)
		}
	}
	for _, k := range order {
		n := k.s * k.l
		per := max(1, limit/n)
		idx := groups[k]
		for lo := 0; lo < len(idx); lo += per {
			ch := muonChunk{s: k.s, l: k.l, params: idx[lo:min(lo+per, len(idx))], tabOff: len(tab),
				nb: max(1, min((n+255)/256, muonMaxBlocks))}
			for _, i := range ch.params {
				tall := ps[i].Shape[0] > ps[i].Shape[1]
				ch.tall = append(ch.tall, tall)
				t := int32(0)
				if tall {
					t = 1
				}
				tab = append(tab, int32(offs[i]), t)
			}
			kk := len(ch.params)
			maxX, maxA, maxPart = max(maxX, kk*n), max(maxA, kk*k.s*k.s), max(maxPart, kk*ch.nb)
			chunks = append(chunks, ch)
		}
	}
	return chunks, tab, maxX, maxA, maxPart, nil
}

// muonKernels is kernels.cu's Muon kernels.
type muonKernels struct{ momentum, scale, update *cuda.Func }

func (u *muonKernels) load(m *cuda.Module) error {
	return lookup(m, []kernelRef{{&u.momentum, "muon_momentum"}, {&u.scale, "muon_scale"}, {&u.update, "muon_update"}})
}

// muonDev is the trainer's Muon scratch and plan (nil for the other optimizers).
type muonDev struct {
	chunks     []muonChunk
	tab        cuda.Ptr // int32 table of every chunk
	x, y, a, b cuda.Ptr // X, Y [k, s, l]; A, B [k, s, s] of the current chunk
	part       cuda.Ptr // double [k·nb]
}

// newMuon plans the matrices, allocates the scratch and uploads the table (inside c.Do).
func (t *Trainer) newMuon() error {
	chunks, tab, maxX, maxA, maxPart, err := muonPlan(t.ps, t.offs, muonChunkFloats)
	if err != nil {
		return err
	}
	u := &muonDev{chunks: chunks}
	if len(chunks) == 0 {
		t.mu = u
		return nil
	}
	for _, a := range []struct {
		p     *cuda.Ptr
		bytes int
	}{{&u.tab, 4 * len(tab)}, {&u.x, 4 * maxX}, {&u.y, 4 * maxX}, {&u.a, 4 * maxA}, {&u.b, 4 * maxA}, {&u.part, 8 * maxPart}} {
		if *a.p, err = t.c.AllocBytes(a.bytes); err != nil {
			return fmt.Errorf("cudab: muon scratch (%d bytes): %w", a.bytes, err)
		}
	}
	if err := cuda.Upload(t.c, u.tab, tab); err != nil {
		return err
	}
	t.mu = u
	return nil
}

// muonStep is the matrices' half of a Muon update with the scheduled learning rate lr (Update
// runs the AdamW half): every chunk through momentum, normalisation, Newton–Schulz and the update.
func (t *Trainer) muonStep(lr float64) {
	o := t.cfg.Optim
	u, kk := t.mu, &t.k.muon
	mu := float32(o.MuonMomentum)
	am := 1 - mu // in float32, as optim.muonUpdate forms it
	wb := cuda.Ptr(0)
	if t.bf {
		wb = t.wb
	}
	for _, ch := range u.chunks {
		k, s, l := len(ch.params), ch.s, ch.l
		n := s * l
		grid, block := cuda.Dim3{X: k * ch.nb}, cuda.Dim3{X: 256}
		tab := u.tab.Add(ch.tabOff)
		t.launch(kk.momentum, grid, block, u.x, u.part, t.om, t.g, tab, ch.nb, s, l, mu, am)
		t.launch(kk.scale, grid, block, u.x, u.part, ch.nb, int64(n))
		t.newtonSchulz(k, s, l)
		// Every Muon matrix is of group Matrix (optim.MuonMatrix): one learning-rate scale and decay.
		scale, wd := optim.GroupHyper(o, t.ps[ch.params[0]].Group)
		step, f := optim.MuonFactors(o, lr, scale, wd, s, l)
		stepTall, _ := optim.MuonFactors(o, lr, scale, wd, l, s)
		t.launch(kk.update, grid, block, t.w, wb, u.x, tab, ch.nb, s, l, step, stepTall, f)
	}
}

// newtonSchulz is optim's newtonSchulz on the k matrices X [k, s, l] of the Muon scratch, as
// strided batched GEMMs: NSSteps × (A = X·Xᵀ; B = b·A; B ← c·A·A + B; Y = X; X ← B·Y + a·X).
func (t *Trainer) newtonSchulz(k, s, l int) {
	u := t.mu
	x := cuda.Operand{P: u.x, Type: cuda.TypeF32, LD: l, Stride: s * l}
	y := cuda.Operand{P: u.y, Type: cuda.TypeF32, LD: l, Stride: s * l}
	a := cuda.Operand{P: u.a, Type: cuda.TypeF32, LD: s, Stride: s * s}
	b := cuda.Operand{P: u.b, Type: cuda.TypeF32, LD: s, Stride: s * s}
	compute := t.c.Precision().F32Compute()
	mm := func(ta, tb bool, m, n, kk int, alpha float32, p, q cuda.Operand, beta float32, r cuda.Operand) {
		if t.err == nil {
			t.fail(t.c.GemmTyped(ta, tb, m, n, kk, alpha, p, q, beta, r, compute, k))
		}
	}
	for range optim.NSSteps {
		mm(false, true, s, s, l, 1, x, x, 0, a)
		t.ew(t.k.scaleTo, int64(k*s*s), u.b, u.a, float32(optim.NSB), int64(k*s*s))
		mm(false, false, s, s, s, optim.NSC, a, a, 1, b)
		if t.err == nil {
			t.fail(t.c.Copy(u.y, u.x, k*s*l))
		}
		mm(false, false, s, l, s, 1, b, y, optim.NSA, x)
	}
}

// optSlots maps the host optimizer's State onto the flat device buffers, by name: per parameter
// its m (every optimizer: Lion's and AdamW's m, Muon's momentum or its AdamW m) and its v where
// the optimizer keeps one (AdamW: every parameter; Muon: the parameters it leaves to AdamW,
// vs[i] nil for its matrices; Lion: none). Exactly those buffers, each of its parameter's length,
// or an error: ToHost and FromHost copy what the host optimizer saves in a checkpoint.
func optSlots(opt optim.Optimizer, ps []*tensor.Param) (ms, vs [][]float32, err error) {
	hasV := func(p *tensor.Param) bool { return false }
	switch opt.Name() {
	case "adamw":
		hasV = func(p *tensor.Param) bool { return true }
	case "muon":
		hasV = func(p *tensor.Param) bool { return !optim.MuonMatrix(p) }
	case "lion":
	default:
		return nil, nil, fmt.Errorf("cudab: optimizer %q has no kernels here", opt.Name())
	}
	st := opt.State()
	byName := make(map[string][]float32, len(st))
	for _, s := range st {
		byName[s.Name] = s.Data
	}
	want := 0
	ms, vs = make([][]float32, len(ps)), make([][]float32, len(ps))
	get := func(p *tensor.Param, suffix string) ([]float32, error) {
		d, ok := byName[p.Name+suffix]
		if !ok {
			return nil, fmt.Errorf("cudab: the %s optimizer has no state %s%s", opt.Name(), p.Name, suffix)
		}
		if len(d) != len(p.W) {
			return nil, fmt.Errorf("cudab: optimizer state %s%s has %d values, parameter %s %d", p.Name, suffix, len(d), p.Name, len(p.W))
		}
		want++
		return d, nil
	}
	for i, p := range ps {
		if ms[i], err = get(p, ".m"); err != nil {
			return nil, nil, err
		}
		if hasV(p) {
			if vs[i], err = get(p, ".v"); err != nil {
				return nil, nil, err
			}
		}
	}
	if len(st) != want {
		return nil, nil, fmt.Errorf("cudab: the %s optimizer has %d state buffers, expected %d", opt.Name(), len(st), want)
	}
	return ms, vs, nil
}
