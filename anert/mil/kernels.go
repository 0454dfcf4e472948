package mil

import (
	"fmt"
	"math"
)

// Kernel names (the original's, seed-system §3.4).
const (
	AttnFwd   = "sdpaWoFwd"  // q,k,v projections, RoPE, causal attention, Wo
	FFNFwd    = "ffnFused"   // SwiGLU FFN and its residual
	FFNBwdW2  = "ffnBwdW2t"  // W2ᵀ·dffn
	FFNBwdW13 = "ffnBwdW13t" // W1ᵀ·dh1 + W3ᵀ·dh3
	WoBwd     = "wotBwd"     // Woᵀ·dx
	AttnBwd1  = "sdpaBwd1"   // recompute P; dV, dP
	AttnBwd2  = "sdpaBwd2"   // dS; dQ, dK (RoPE undone)
	QKVBwd    = "qkvBwd"     // Wqᵀ·dQ + Wkᵀ·dK + Wvᵀ·dV

	// The conservative variants of the two kernels with RoPE fused in (RoPE in a MIL kernel
	// compiles in no public project; maderix rotates on the CPU):
	QKVFwd      = "qkvFwd"      // q,k,v projections only (AttnFwd's first half; RoPE then on the CPU)
	SdpaWo      = "sdpaWo"      // causal attention and Wo from q, k (rotated by the CPU) and v
	AttnBwd2Raw = "sdpaBwd2Raw" // sdpaBwd2 without the inverse RoPE (undone on the CPU)
	maskFile    = "mask.bin"
	ropeCosBin  = "rope_cos.bin"
	ropeSinBin  = "rope_sin.bin"
)

// Names lists the kernels in the order Kernels returns them: the fused set, tried first.
var Names = []string{AttnFwd, FFNFwd, FFNBwdW2, FFNBwdW13, WoBwd, AttnBwd1, AttnBwd2, QKVBwd}

// VariantNames lists the conservative variants' kernels (see QKVFwd, SdpaWo, AttnBwd2Raw).
var VariantNames = []string{QKVFwd, SdpaWo, AttnBwd2Raw}

// Variant names: how a slot's conservative variant differs from the fused kernel.
const (
	VariantSplit   = "split"    // sdpaWoFwd as qkvFwd; RoPE on the CPU; sdpaWo
	VariantCPURope = "cpu-rope" // sdpaBwd2 as sdpaBwd2Raw; inverse RoPE on the CPU
)

// Slot is a fused kernel that has a conservative variant, and the kernels that replace it.
type Slot struct {
	Fused   string   // the fused kernel, which also names the slot (AttnFwd, AttnBwd2)
	Variant string   // VariantSplit or VariantCPURope
	Kernels []string // the variant's kernels, in evaluation order
}

// Slots are the fused kernels of c with a conservative variant: sdpaWoFwd (split) always, and with
// RoPE sdpaBwd2 (cpu-rope); a NoPE sdpaBwd2 has no rotation to move to the CPU.
func Slots(c Config) []Slot {
	s := []Slot{{AttnFwd, VariantSplit, []string{QKVFwd, SdpaWo}}}
	if c.Rope {
		s = append(s, Slot{AttnBwd2, VariantCPURope, []string{AttnBwd2Raw}})
	}
	return s
}

// AllNames is Names then VariantNames: every kernel a backend may compile.
func AllNames() []string { return append(append([]string(nil), Names...), VariantNames...) }

// Generate returns the kernel called name for c.
func Generate(name string, c Config) (*Kernel, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	g, ok := map[string]func(Config) *Kernel{
		AttnFwd: genAttnFwd, FFNFwd: genFFNFwd, FFNBwdW2: genFFNBwdW2, FFNBwdW13: genFFNBwdW13,
		WoBwd: genWoBwd, AttnBwd1: genAttnBwd1, AttnBwd2: genAttnBwd2, QKVBwd: genQKVBwd,
		QKVFwd: genQKVFwd, SdpaWo: genSdpaWo, AttnBwd2Raw: genAttnBwd2Raw,
	}[name]
	if !ok {
		return nil, fmt.Errorf("mil: no kernel %q (have %v)", name, AllNames())
	}
	return g(c), nil
}

// Kernels returns all eight kernels of one layer for c.
func Kernels(c Config) ([]*Kernel, error) {
	ks := make([]*Kernel, len(Names))
	for i, n := range Names {
		k, err := Generate(n, c)
		if err != nil {
			return nil, err
		}
		ks[i] = k
	}
	return ks, nil
}

// ---- field helpers ----

// layout builds the fields of a surface Width wide, in order.
type layout struct {
	width  int
	fields []Field
}

func (l *layout) cols(name string, role Role, ch, col0, cols int, tr bool, doc string) {
	l.fields = append(l.fields, Field{Name: name, Role: role, Channels: ch, Col0: col0, Cols: cols, Width: l.width, Transposed: tr, Doc: doc})
}

func (l *layout) chans(name string, role Role, ch0, ch int, tr bool, doc string) {
	l.fields = append(l.fields, Field{Name: name, Role: role, Ch0: ch0, Channels: ch, Cols: l.width, Width: l.width, Transposed: tr, Doc: doc})
}

func finish(name string, c Config, b *Builder, out Var, in, o layout, doc string) *Kernel {
	text, blobs := b.Program(out)
	return &Kernel{Name: name, Config: c, MIL: text, Blobs: blobs,
		In: Shape(b.X().Shape), Out: Shape{out.Shape[0], out.Shape[1], out.Shape[2], out.Shape[3]},
		Inputs: in.fields, Outputs: o.fields, FLOPs: b.FLOPs(), Doc: doc}
}

// ---- building blocks ----

// tokens turns an activation [1,C,1,S] into the matmul operand [1,1,S,C].
func tokens(b *Builder, name string, a Var) Var {
	c, s := a.Shape[1], a.Shape[3]
	return b.Swap(name+"t", b.Reshape(name+"2", a, 1, 1, c, s))
}

// project computes y[n,t] = Σ_c w[c,n]·a[c,t] for a packed weight w [1,C,1,N] and the operand at
// [1,1,S,C] (from tokens); y is [1,N,1,S]. This is the dynamic-weight matmul of §3.3.
func project(b *Builder, name string, at, w Var) Var {
	c, n, s := w.Shape[1], w.Shape[3], at.Shape[2]
	W := b.Reshape(name+"W", w, 1, 1, c, n)
	yh := b.Matmul(name+"m", at, W, false, false) // [1,1,S,N]
	return b.Reshape(name, b.Swap(name+"t", yh), 1, n, 1, s)
}

// heads splits a flat [1,D,1,S] (channel h·hd + i) into [1,H,S,hd].
func heads(b *Builder, name string, f Var, h int) Var {
	d, s := f.Shape[1], f.Shape[3]
	return b.Swap(name, b.Reshape(name+"r", f, 1, h, d/h, s))
}

// flat merges [1,H,S,hd] back into [1,D,1,S].
func flat(b *Builder, name string, x Var) Var {
	h, s, hd := x.Shape[1], x.Shape[2], x.Shape[3]
	return b.Reshape(name, b.Swap(name+"t", x), 1, h*hd, 1, s)
}

// rope rotates adjacent pairs (2i, 2i+1) of x [1,H,S,hd] by the angle in the tables:
//
//	rot(x)[2i] = −x[2i+1], rot(x)[2i+1] = x[2i]
//	forward:  y = x⊙cos + rot(x)⊙sin   (y[2i] = x[2i]·c − x[2i+1]·s, y[2i+1] = x[2i+1]·c + x[2i]·s)
//	inverse:  y = x⊙cos − rot(x)⊙sin   (the transpose of the forward rotation: its backward)
//
// cos/sin are [1,1,S,hd] with both entries of a pair equal (maderix training_dynamic layout).
func rope(b *Builder, name string, x, cos, sin Var, inverse bool) Var {
	h, s, hd := x.Shape[1], x.Shape[2], x.Shape[3]
	n := s * hd / 2
	p := b.Reshape(name+"_p", x, 1, h, n, 2)
	e := b.Slice(name+"_e", p, []int{0, 0, 0, 0}, []int{1, h, n, 1})
	o := b.Slice(name+"_o", p, []int{0, 0, 0, 1}, []int{1, h, n, 1})
	no := b.Mul(name+"_no", o, b.FP16("neg1", -1))
	rot := b.Reshape(name+"_rot", b.Concat(name+"_rp", 3, no, e), 1, h, s, hd)
	xc := b.Mul(name+"_c", x, cos)
	rs := b.Mul(name+"_s", rot, sin)
	if inverse {
		return b.Sub(name+"_ir", xc, rs)
	}
	return b.Add(name+"_r", xc, rs)
}

// RopeTables returns the cos and sin tables [S][hd]: for position p and pair i,
// θ = p·theta^(−2i/hd), cos[p][2i] = cos[p][2i+1] = cos θ, and likewise sin.
func RopeTables(seq, hd int, theta float64) (cos, sin []float32) {
	cos, sin = make([]float32, seq*hd), make([]float32, seq*hd)
	for p := 0; p < seq; p++ {
		for i := 0; i < hd/2; i++ {
			a := float64(p) * math.Pow(theta, -2*float64(i)/float64(hd))
			c, s := float32(math.Cos(a)), float32(math.Sin(a))
			cos[p*hd+2*i], cos[p*hd+2*i+1] = c, c
			sin[p*hd+2*i], sin[p*hd+2*i+1] = s, s
		}
	}
	return cos, sin
}

// CausalMask is the additive mask [S][S]: 0 where key s ≤ query t, −65504 (fp16 −max) elsewhere.
func CausalMask(seq int) []float32 {
	m := make([]float32, seq*seq)
	for t := 0; t < seq; t++ {
		for s := t + 1; s < seq; s++ {
			m[t*seq+s] = -65504
		}
	}
	return m
}

func ropeConsts(b *Builder, c Config) (cos, sin Var) {
	hd := c.HeadDim()
	ct, st := RopeTables(c.Seq, hd, c.RopeTheta)
	return b.Blob("rope_cos", ropeCosBin, []int{1, 1, c.Seq, hd}, ct), b.Blob("rope_sin", ropeSinBin, []int{1, 1, c.Seq, hd}, st)
}

// scores computes softmax(q·kᵀ·scale + mask) per head: [1,H,S,S].
func scores(b *Builder, c Config, q, k Var) Var {
	s := c.Seq
	sc1 := b.Matmul("sc1", q, k, false, true)
	sc2 := b.Mul("sc2", sc1, b.FP16("scv", 1/math.Sqrt(float64(c.HeadDim()))))
	ms := b.Add("ms", sc2, b.Blob("cm", maskFile, []int{1, 1, s, s}, CausalMask(s)))
	return b.Softmax("probs", ms, -1)
}

// ---- kernels ----

// genAttnFwd: xn [D,S] → q = Wq·xn, k = Wk·xn, v = Wv·xn; RoPE on q, k; per head
// a = softmax(q·kᵀ/√hd + M)·v; o = Wo·a. Output concat(o, a, q, k, v) with q, k after RoPE.
func genAttnFwd(c Config) *Kernel {
	D, S, H := c.Dim, c.Seq, c.Heads
	sp := S + 4*D
	b := NewBuilder(Shape{1, D, 1, sp})
	x := b.X()
	in := layout{width: sp}
	in.cols("xn", Activation, D, 0, S, true, "normed layer input xn, token-major [S][D]")
	xn := b.Slice("xn", x, []int{0, 0, 0, 0}, []int{1, D, 1, S})
	var w [4]Var
	for i, n := range []string{"Wq", "Wk", "Wv", "Wo"} {
		in.cols(n, Weight, D, S+i*D, D, true, n+" [out][in] as in the model (packed as its transpose)")
		w[i] = b.Slice(n, x, []int{0, 0, 0, S + i*D}, []int{1, D, 1, D})
	}
	xt := tokens(b, "xn", xn)
	qf, kf, vf := project(b, "qf", xt, w[0]), project(b, "kf", xt, w[1]), project(b, "vf", xt, w[2])
	q, k, v := heads(b, "q", qf, H), heads(b, "k", kf, H), heads(b, "v", vf, H)
	qo, ko := qf, kf
	if c.Rope {
		cos, sin := ropeConsts(b, c)
		q, k = rope(b, "q", q, cos, sin, false), rope(b, "k", k, cos, sin, false)
		qo, ko = flat(b, "qo", q), flat(b, "ko", k)
	}
	p := scores(b, c, q, k)
	af := flat(b, "af", b.Matmul("a4", p, v, false, false))
	of := project(b, "of", tokens(b, "ao", af), w[3])
	out := b.Concat("out", 1, of, af, qo, ko, vf)
	o := layout{width: S}
	rq, rk := "q = Wq·xn (NoPE)", "k = Wk·xn (NoPE)"
	if c.Rope {
		rq, rk = "q after RoPE", "k after RoPE"
	}
	for i, n := range []string{"o", "a", "q", "k", "v"} {
		o.chans(n, Activation, i*D, D, true, map[string]string{
			"o": "Wo·a", "a": "attention output before Wo", "q": rq, "k": rk, "v": "v = Wv·xn"}[n]+", token-major [S][D]")
	}
	return finish(AttnFwd, c, b, out, in, o, "q,k,v = Wq·xn, Wk·xn, Wv·xn; RoPE(q,k); a = causal softmax(q·kᵀ/√hd)·v per head; o = Wo·a")
}

// genQKVFwd: xn [D,S] → q = Wq·xn, k = Wk·xn, v = Wv·xn, without RoPE (the first half of
// sdpaWoFwd; the backend rotates q, k on the CPU and hands them to sdpaWo). Output concat(q, k, v).
func genQKVFwd(c Config) *Kernel {
	D, S := c.Dim, c.Seq
	sp := S + 3*D
	b := NewBuilder(Shape{1, D, 1, sp})
	x := b.X()
	in := layout{width: sp}
	in.cols("xn", Activation, D, 0, S, true, "normed layer input xn, token-major [S][D]")
	xn := b.Slice("xn", x, []int{0, 0, 0, 0}, []int{1, D, 1, S})
	var w [3]Var
	for i, n := range []string{"Wq", "Wk", "Wv"} {
		in.cols(n, Weight, D, S+i*D, D, true, n+" [out][in] as in the model (packed as its transpose)")
		w[i] = b.Slice(n, x, []int{0, 0, 0, S + i*D}, []int{1, D, 1, D})
	}
	xt := tokens(b, "xn", xn)
	out := b.Concat("out", 1, project(b, "qf", xt, w[0]), project(b, "kf", xt, w[1]), project(b, "vf", xt, w[2]))
	o := layout{width: S}
	for i, n := range []string{"q", "k", "v"} {
		o.chans(n, Activation, i*D, D, true, n+" = W"+n+"·xn (before RoPE), token-major [S][D]")
	}
	return finish(QKVFwd, c, b, out, in, o, "q,k,v = Wq·xn, Wk·xn, Wv·xn (no RoPE)")
}

// genSdpaWo: from q, k (after RoPE, applied by the caller) and v, per head
// a = softmax(q·kᵀ/√hd + M)·v; o = Wo·a (the second half of sdpaWoFwd). Output concat(o, a).
func genSdpaWo(c Config) *Kernel {
	D, S, H := c.Dim, c.Seq, c.Heads
	sp := 3*S + D
	b := NewBuilder(Shape{1, D, 1, sp})
	x := b.X()
	in := layout{width: sp}
	var f [3]Var
	for i, n := range []string{"q", "k", "v"} {
		what := map[string]string{"q": "q after RoPE", "k": "k after RoPE", "v": "v"}[n]
		in.cols(n, Activation, D, i*S, S, true, what+", token-major [S][D]")
		f[i] = b.Slice(n+"f", x, []int{0, 0, 0, i * S}, []int{1, D, 1, S})
	}
	in.cols("Wo", Weight, D, 3*S, D, true, "Wo [out][in] as in the model (packed as its transpose)")
	wo := b.Slice("Wo", x, []int{0, 0, 0, 3 * S}, []int{1, D, 1, D})
	p := scores(b, c, heads(b, "q", f[0], H), heads(b, "k", f[1], H))
	af := flat(b, "af", b.Matmul("a4", p, heads(b, "v", f[2], H), false, false))
	of := project(b, "of", tokens(b, "ao", af), wo)
	out := b.Concat("out", 1, of, af)
	o := layout{width: S}
	o.chans("o", Activation, 0, D, true, "Wo·a, token-major [S][D]")
	o.chans("a", Activation, D, D, true, "attention output before Wo, token-major [S][D]")
	return finish(SdpaWo, c, b, out, in, o, "a = causal softmax(q·kᵀ/√hd)·v per head; o = Wo·a")
}

// genAttnBwd2Raw is sdpaBwd2 without the inverse RoPE: dq, dk are the gradients of the rotated
// q, k, and the backend undoes the rotation on the CPU.
func genAttnBwd2Raw(c Config) *Kernel {
	c.Rope = false
	k := genAttnBwd2(c)
	k.Name = AttnBwd2Raw
	k.Doc = "dS = P⊙(dP − rowsum(P⊙dP))/√hd; dQ = dS·k; dK = dSᵀ·q (gradients of the rotated q, k)"
	return k
}

// genFFNFwd: h1 = W1·x2n, h3 = W3·x2n, gate = silu(h1)⊙h3, x_next = x2 + α·(W2·gate).
// Output concat(x_next, h1, h3, gate).
func genFFNFwd(c Config) *Kernel {
	D, S, F := c.Dim, c.Seq, c.FFN
	sp := 2*S + 3*F
	b := NewBuilder(Shape{1, D, 1, sp})
	x := b.X()
	in := layout{width: sp}
	in.cols("x2n", Activation, D, 0, S, true, "normed FFN input, token-major [S][D]")
	in.cols("x2", Activation, D, S, S, true, "residual stream before the FFN, token-major [S][D]")
	in.cols("W1", Weight, D, 2*S, F, true, "W1 [F][D] as in the model (packed as its transpose)")
	in.cols("W3", Weight, D, 2*S+F, F, true, "W3 [F][D] as in the model (packed as its transpose)")
	in.cols("W2", Weight, D, 2*S+2*F, F, false, "W2 [D][F] as in the model (packed as is, transposed in the kernel)")
	x2n := b.Slice("x2n", x, []int{0, 0, 0, 0}, []int{1, D, 1, S})
	x2 := b.Slice("x2", x, []int{0, 0, 0, S}, []int{1, D, 1, S})
	w1 := b.Slice("W1", x, []int{0, 0, 0, 2 * S}, []int{1, D, 1, F})
	w3 := b.Slice("W3", x, []int{0, 0, 0, 2*S + F}, []int{1, D, 1, F})
	w2 := b.Slice("W2", x, []int{0, 0, 0, 2*S + 2*F}, []int{1, D, 1, F})
	xt := tokens(b, "x2n", x2n)
	h1, h3 := project(b, "h1", xt, w1), project(b, "h3", xt, w3)
	gate := b.Mul("gate", b.Mul("silu", h1, b.Sigmoid("sig", h1)), h3)
	w2t := b.Swap("W2T", b.Reshape("W22", w2, 1, 1, D, F)) // [1,1,F,D]
	fm := b.Matmul("fm", tokens(b, "gate", gate), w2t, false, false)
	ffn := b.Reshape("ffn", b.Swap("fmt", fm), 1, D, 1, S)
	xnext := b.Add("xnext", x2, b.Mul("ffs", ffn, b.FP16("alpha", c.Alpha)))
	out := b.Concat("out", 1, xnext, h1, h3, gate)
	o := layout{width: S}
	o.chans("x_next", Activation, 0, D, true, "x2 + α·W2·gate, token-major [S][D]")
	o.chans("h1", Activation, D, F, true, "W1·x2n, token-major [S][F]")
	o.chans("h3", Activation, D+F, F, true, "W3·x2n, token-major [S][F]")
	o.chans("gate", Activation, D+2*F, F, true, "silu(h1)⊙h3, token-major [S][F]")
	return finish(FFNFwd, c, b, out, in, o, fmt.Sprintf("h1 = W1·x2n, h3 = W3·x2n, gate = silu(h1)⊙h3, x_next = x2 + α·W2·gate (α = fp16(%g))", c.Alpha))
}

// dxKernel builds out = Σ_i W_iᵀ·dy_i for packed weights W_i [C][N] (as in the model, C = the
// weight's output dimension = input channels) and activations dy_i [C][S]: a sum of dynamic matmuls.
func dxKernel(name string, c Config, C, N int, acts, ws []string, outName, doc string) *Kernel {
	S := c.Seq
	n := len(acts)
	sp := n * (S + N)
	b := NewBuilder(Shape{1, C, 1, sp})
	x := b.X()
	in := layout{width: sp}
	for i := range acts {
		in.cols(acts[i], Activation, C, i*S, S, true, fmt.Sprintf("%s, token-major [S][%d]", acts[i], C))
	}
	for i := range ws {
		in.cols(ws[i], Weight, C, n*S+i*N, N, false, fmt.Sprintf("%s [%d][%d] as in the model (packed as is)", ws[i], C, N))
	}
	var sum Var
	for i := range acts {
		a := b.Slice(acts[i], x, []int{0, 0, 0, i * S}, []int{1, C, 1, S})
		at := tokens(b, acts[i], a)
		w := b.Slice(ws[i], x, []int{0, 0, 0, n*S + i*N}, []int{1, C, 1, N})
		m := b.Matmul(ws[i]+"m", at, b.Reshape(ws[i]+"W", w, 1, 1, C, N), false, false) // [1,1,S,N]
		if i == 0 {
			sum = m
		} else {
			sum = b.Add(fmt.Sprintf("sum%d", i), sum, m)
		}
	}
	out := b.Reshape(outName, b.Swap("outt", sum), 1, N, 1, S)
	o := layout{width: S}
	o.chans(outName, Activation, 0, N, true, fmt.Sprintf("%s, token-major [S][%d]", doc, N))
	return finish(name, c, b, out, in, o, doc)
}

// genFFNBwdW2: dsilu = W2ᵀ·dffn.
func genFFNBwdW2(c Config) *Kernel {
	return dxKernel(FFNBwdW2, c, c.Dim, c.FFN, []string{"dffn"}, []string{"W2"}, "dsilu", "W2ᵀ·dffn")
}

// genFFNBwdW13: dx = W1ᵀ·dh1 + W3ᵀ·dh3.
func genFFNBwdW13(c Config) *Kernel {
	return dxKernel(FFNBwdW13, c, c.FFN, c.Dim, []string{"dh1", "dh3"}, []string{"W1", "W3"}, "dx", "W1ᵀ·dh1 + W3ᵀ·dh3")
}

// genWoBwd: da = Woᵀ·dy.
func genWoBwd(c Config) *Kernel {
	return dxKernel(WoBwd, c, c.Dim, c.Dim, []string{"dy"}, []string{"Wo"}, "da", "Woᵀ·dy")
}

// genQKVBwd: dx = Wqᵀ·dq + Wkᵀ·dk + Wvᵀ·dv (dq, dk before RoPE, as sdpaBwd2 returns them).
func genQKVBwd(c Config) *Kernel {
	return dxKernel(QKVBwd, c, c.Dim, c.Dim, []string{"dq", "dk", "dv"}, []string{"Wq", "Wk", "Wv"}, "dx", "Wqᵀ·dq + Wkᵀ·dk + Wvᵀ·dv")
}

// genAttnBwd1 (weight-free): from q, k (after RoPE), v and da recompute P = softmax(q·kᵀ/√hd + M)
// per head, then dV = Pᵀ·dA and dP = dA·vᵀ. Output concat(dV, P, dP); P and dP are [H·S, S]
// with channel h·S + t (query) and column s (key).
func genAttnBwd1(c Config) *Kernel {
	D, S, H := c.Dim, c.Seq, c.Heads
	b := NewBuilder(Shape{1, 4 * D, 1, S})
	x := b.X()
	in := layout{width: S}
	var f [4]Var
	for i, n := range []string{"q", "k", "v", "da"} {
		in.chans(n, Activation, i*D, D, true, map[string]string{"q": "q after RoPE", "k": "k after RoPE", "v": "v", "da": "gradient of the attention output a"}[n]+", token-major [S][D]")
		f[i] = b.Slice(n+"f", x, []int{0, i * D, 0, 0}, []int{1, D, 1, S})
	}
	q, k, v, da := heads(b, "q", f[0], H), heads(b, "k", f[1], H), heads(b, "v", f[2], H), heads(b, "da", f[3], H)
	p := scores(b, c, q, k)
	dv := flat(b, "dvf", b.Matmul("dv4", p, da, true, false))
	dp := b.Matmul("dp4", da, v, false, true)
	pf := b.Reshape("pf", p, 1, H*S, 1, S)
	dpf := b.Reshape("dpf", dp, 1, H*S, 1, S)
	out := b.Concat("out", 1, dv, pf, dpf)
	o := layout{width: S}
	o.chans("dv", Activation, 0, D, true, "dV = Pᵀ·dA per head, token-major [S][D]")
	o.chans("P", Intermediate, D, H*S, false, "P [H][S][S] (query t, key s), fp16 for sdpaBwd2")
	o.chans("dP", Intermediate, D+H*S, H*S, false, "dP = dA·vᵀ [H][S][S], fp16 for sdpaBwd2")
	return finish(AttnBwd1, c, b, out, in, o, "P = causal softmax(q·kᵀ/√hd); dV = Pᵀ·dA; dP = dA·vᵀ")
}

// genAttnBwd2 (weight-free): dS = P⊙(dP − rowsum(P⊙dP))/√hd, dQ = dS·k, dK = dSᵀ·q; with RoPE
// the rotation is undone in the kernel, so dq, dk are the gradients of Wq·xn, Wk·xn.
// Output concat(dq, dk).
func genAttnBwd2(c Config) *Kernel {
	D, S, H := c.Dim, c.Seq, c.Heads
	hs := H * S
	b := NewBuilder(Shape{1, 2*hs + 2*D, 1, S})
	x := b.X()
	in := layout{width: S}
	in.chans("P", Intermediate, 0, hs, false, "P from sdpaBwd1 (fp16, as is)")
	in.chans("dP", Intermediate, hs, hs, false, "dP from sdpaBwd1 (fp16, as is)")
	in.chans("q", Activation, 2*hs, D, true, "q after RoPE, token-major [S][D]")
	in.chans("k", Activation, 2*hs+D, D, true, "k after RoPE, token-major [S][D]")
	pf := b.Slice("pf", x, []int{0, 0, 0, 0}, []int{1, hs, 1, S})
	dpf := b.Slice("dpf", x, []int{0, hs, 0, 0}, []int{1, hs, 1, S})
	qf := b.Slice("qf", x, []int{0, 2 * hs, 0, 0}, []int{1, D, 1, S})
	kf := b.Slice("kf", x, []int{0, 2*hs + D, 0, 0}, []int{1, D, 1, S})
	p := b.Reshape("probs", pf, 1, H, S, S)
	dp := b.Reshape("dp", dpf, 1, H, S, S)
	q, k := heads(b, "q", qf, H), heads(b, "k", kf, H)
	rs := b.ReduceSumLast("spdp", b.Mul("pdp", p, dp))
	ds0 := b.Mul("ds0", p, b.Sub("dps", dp, rs))
	ds := b.Mul("ds", ds0, b.FP16("scv", 1/math.Sqrt(float64(c.HeadDim()))))
	dq := b.Matmul("dq4", ds, k, false, false)
	dk := b.Matmul("dk4", ds, q, true, false)
	what := "post-RoPE"
	if c.Rope {
		cos, sin := ropeConsts(b, c)
		dq, dk = rope(b, "dq", dq, cos, sin, true), rope(b, "dk", dk, cos, sin, true)
		what = "pre-RoPE (rotation undone in the kernel)"
	}
	out := b.Concat("out", 1, flat(b, "dqf", dq), flat(b, "dkf", dk))
	o := layout{width: S}
	o.chans("dq", Activation, 0, D, true, "dQ "+what+", token-major [S][D]")
	o.chans("dk", Activation, D, D, true, "dK "+what+", token-major [S][D]")
	return finish(AttnBwd2, c, b, out, in, o, "dS = P⊙(dP − rowsum(P⊙dP))/√hd; dQ = dS·k; dK = dSᵀ·q; inverse RoPE")
}
