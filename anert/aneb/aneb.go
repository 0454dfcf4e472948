// Package aneb is the model's ANE backend: a model.Backend that runs the eight MIL kernels of
// anert/mil on a device.Device — the Neural Engine, or the emulator that stands in for it — in
// fp16, while the model keeps the embedding, norms, residuals, loss and every weight gradient on
// the CPU in fp32 (seed-system §3.5).
//
// Per layer and sequence, one micro-step evaluates 2 forward and 6 backward kernels:
//
//	AttnForward   sdpaWoFwd   xn → o, a, q, k (after RoPE), v
//	FFNForward    ffnFused    x2n → y = W2·gate, h1, h3, gate
//	FFNBackward   ffnBwdW2t   dy → dgate = W2ᵀ·dy;  SwiGLU backward on the CPU (dh1, dh3);
//	              ffnBwdW13t  dh1, dh3 → dx2n = W1ᵀ·dh1 + W3ᵀ·dh3
//	AttnBackward  wotBwd      do → da = Woᵀ·do
//	              sdpaBwd1    q, k, v, da → dv, P, dP   (P recomputed)
//	              sdpaBwd2    P, dP, q, k → dq, dk      (RoPE undone in the kernel)
//	              qkvBwd      dq, dk, dv → dxn = Wqᵀ·dq + Wkᵀ·dk + Wvᵀ·dv
//
// Variants (variants.go): sdpaWoFwd and sdpaBwd2, which fuse RoPE into the kernel, each have a
// conservative variant that rotates on the CPU instead; NewWith falls back to it per kernel when the
// fused one fails to compile or disagrees with the emulator on its first evaluation, and Choices
// says which ran and why.
//
// Compile once, stage weights once per update: New generates and compiles each kernel once. Every
// (layer, weight-bearing kernel) pair gets its own input surface whose weight columns are written
// when the layer is first seen and again in WeightsChanged (after each optimizer update, all
// layers in parallel); each call writes only the activation columns. Of each output the backend
// reads only the fields the model keeps, and of those only the real tokens' columns. da, P, dP,
// dq, dk and dv move from one kernel's output surface to the next one's input surface as raw fp16
// (device.Program.CopyTo; the original's io_copy, seed-system §3.4), so P and dP, the largest
// blocks, never reach Go. StepTraffic is the bytes one optimizer step moves (traffic.go).
//
// ffnFused computes x_next = x2 + α·W2·gate. The model's contract is Y = W2·gate (it adds the
// residual itself), so this backend generates ffnFused with α = 1 and leaves its x2 columns 0:
// x_next is then exactly Y (fp16 adds of 0 and products by 1 are exact).
//
// Batches and short calls: a kernel processes one sequence of S = Seq tokens, so a call on B
// sequences loops over them. A call with T < Seq tokens (sampling) is padded with zero rows after
// the real ones; causal attention keeps the padding from reaching the real rows, and the padded
// rows of the outputs are dropped.
//
// Gradient range: every backward kernel is linear in the gradient it is given, so each backward
// call (per sequence) multiplies that gradient by a power of two 2^e chosen so that its largest
// magnitude lands in [8, 16), and multiplies the results by 2^−e. Powers of two are exact in fp16
// and fp32, so this changes nothing but the range: small gradients (no loss scaling, many tokens)
// stay out of fp16's subnormals, large ones (a big loss scale) away from its overflow at 65504.
//
// The LayerActs.LSE field is not written: sdpaBwd1 recomputes P from q and k.
//
// Async weight gradients: on a real accelerator the Backend reports Async() = true
// (model.AsyncBackend), and the model then runs each layer's weight-gradient GEMMs on the CPU
// while the next backward kernels evaluate (seed-system §3.6); on the emulator it is off unless
// forced with SetAsync.
package aneb

import (
	"fmt"
	"math"
	"time"

	"github.com/anelab/anelab/anert/config"
	"github.com/anelab/anelab/anert/device"
	"github.com/anelab/anelab/anert/mil"
	"github.com/anelab/anelab/anert/model"
	"github.com/anelab/anelab/internal/par"
)

// Kernel indices, in mil.Names order.
const (
	kAttnFwd = iota
	kFFNFwd
	kFFNBwdW2
	kFFNBwdW13
	kWoBwd
	kAttnBwd1
	kAttnBwd2
	kQKVBwd
	kQKVFwd      // variant "split" of kAttnFwd, first half
	kSdpaWo      // variant "split" of kAttnFwd, second half
	kAttnBwd2Raw // variant "cpu-rope" of kAttnBwd2
	nKernels
)

var kernelNames = [nKernels]string{mil.AttnFwd, mil.FFNFwd, mil.FFNBwdW2, mil.FFNBwdW13, mil.WoBwd,
	mil.AttnBwd1, mil.AttnBwd2, mil.QKVBwd, mil.QKVFwd, mil.SdpaWo, mil.AttnBwd2Raw}

// EvalsPerLayer is the kernel evaluations of one layer on one sequence per micro-step with the
// fused kernels (Backend.EvalsPerLayer counts the variants that run).
const EvalsPerLayer = 8

// Backend runs the model's layers on a device. It is not safe for concurrent use (the model calls
// it from one goroutine at a time).
type Backend struct {
	dev     device.Device
	cfg     config.Model
	kc      mil.Config
	ks      [nKernels]*mil.Kernel
	progs   [nKernels]device.Program
	outs    [nKernels][]uint16 // the whole output surface per kernel (Options.WholeOutputs only)
	weighty [nKernels]bool     // the kernel has weight fields
	layers  []layerState
	free    [nKernels]device.Input   // inputs of the weight-free kernels (sdpaBwd1, sdpaBwd2)
	spare   [nKernels][]device.Input // inputs made while verifying, handed to the first layers
	use     [nKernels]bool           // the kernel is compiled and runs (the chosen variants')
	split   bool                     // attention forward runs as qkvFwd, RoPE on the CPU, sdpaWo
	rawBwd2 bool                     // sdpaBwd2 runs without RoPE; the CPU undoes the rotation
	choices []Choice
	opts    Options

	compile       time.Duration
	evals         int64 // kernel evaluations so far
	mark, perStep int64 // evals at the last WeightsChanged; evals between the last two

	async   bool     // model.AsyncBackend's answer (Async, SetAsync)
	workers int      // goroutines of the current call (Shape.Workers)
	blk     []uint16 // fp16 block staged into an input (activations, passes, lazily staged weights)
}

// layerState is one layer's input surfaces and which of them hold its current weights.
type layerState struct {
	w      *model.Layer           // the weights staged (nil: none yet)
	in     [nKernels]device.Input // nil for the weight-free kernels
	staged [nKernels]bool
}

// New is NewWith(dev, m, Options{}): the fused kernels where they compile and agree with the
// emulator, each fused kernel's conservative variant where not.
func New(dev device.Device, m config.Model) (*Backend, error) { return NewWith(dev, m, Options{}) }

// NewWith generates the kernels of m, compiles each once on dev — choosing per fused kernel
// between it and its conservative variant (variants.go) — and allocates one input surface per
// (layer, weight-bearing kernel). The Backend owns dev: Close closes it, and so does a failing
// NewWith. It does not run the constraint checker (anert/mil/check): callers that target the
// real ANE run it first.
func NewWith(dev device.Device, m config.Model, o Options) (*Backend, error) {
	if m.Activation() != "swiglu" || m.QKNorm {
		dev.Close()
		return nil, fmt.Errorf("aneb: model.act = %s, model.qk_norm = %t: the ANE kernels implement the SwiGLU MLP without QK-norm only "+
			"(anelab check explains: rule arch-options); set act = swiglu and qk_norm = false, or use the CPU backend", m.Activation(), m.QKNorm)
	}
	if m.KV() != m.Heads {
		dev.Close()
		return nil, fmt.Errorf("aneb: kv_heads %d ≠ heads %d: the ANE kernels are multi-head attention only; set kv_heads = 0", m.KV(), m.Heads)
	}
	if m.Layers <= 0 {
		dev.Close()
		return nil, fmt.Errorf("aneb: layers = %d: must be positive", m.Layers)
	}
	_, emu := dev.(*device.Emu)
	b := &Backend{dev: dev, cfg: m, kc: mil.FromModel(m), workers: 1, async: !emu, opts: o}
	t0 := time.Now()
	if err := b.compileAll(); err != nil {
		b.Close()
		return nil, err
	}
	b.compile = time.Since(t0)
	if err := b.checkWiring(); err != nil {
		b.Close()
		return nil, err
	}
	b.layers = make([]layerState, m.Layers)
	newInput := func(i int) (device.Input, error) {
		if sp := b.spare[i]; len(sp) > 0 {
			b.spare[i] = sp[1:]
			return sp[0], nil
		}
		return b.progs[i].NewInput()
	}
	for i := range nKernels {
		if !b.use[i] {
			continue
		}
		if !b.weighty[i] {
			in, err := newInput(i)
			if err != nil {
				b.Close()
				return nil, fmt.Errorf("aneb: kernel %s: %w", kernelNames[i], err)
			}
			b.free[i] = in
			continue
		}
		for l := range b.layers {
			in, err := newInput(i)
			if err != nil {
				b.Close()
				return nil, fmt.Errorf("aneb: kernel %s, layer %d: %w", kernelNames[i], l, err)
			}
			b.layers[l].in[i] = in
		}
	}
	for i := range b.spare { // more verification inputs than layers
		for _, in := range b.spare[i] {
			in.Close()
		}
		b.spare[i] = nil
	}
	return b, nil
}

// pass is one raw fp16 hand-over from an output field of kernel from to an input field of kernel to.
type pass struct {
	from int
	out  string
	to   int
	in   string
}

var passes = []pass{
	{kWoBwd, "da", kAttnBwd1, "da"},
	{kAttnBwd1, "P", kAttnBwd2, "P"},
	{kAttnBwd1, "dP", kAttnBwd2, "dP"},
	{kAttnBwd2, "dq", kQKVBwd, "dq"},
	{kAttnBwd2, "dk", kQKVBwd, "dk"},
	{kAttnBwd1, "P", kAttnBwd2Raw, "P"},
	{kAttnBwd1, "dP", kAttnBwd2Raw, "dP"},
	{kAttnBwd1, "dv", kQKVBwd, "dv"},
}

// checkWiring verifies that every raw hand-over moves a block of the same shape, that every
// activation field is token-major [Seq][C] (what put and get assume), and that every activation
// output spans whole rows of the output surface (get decodes it in place).
func (b *Backend) checkWiring() error {
	for _, p := range passes {
		if !b.use[p.from] || !b.use[p.to] {
			continue
		}
		o, i := b.ks[p.from].Output(p.out), b.ks[p.to].Input(p.in)
		if o.Channels != i.Channels || o.Cols != i.Cols {
			return fmt.Errorf("aneb: %s.%s is %d×%d but %s.%s is %d×%d", kernelNames[p.from], p.out, o.Channels, o.Cols,
				kernelNames[p.to], p.in, i.Channels, i.Cols)
		}
	}
	for i, k := range b.ks {
		if !b.use[i] {
			continue
		}
		for _, fs := range [][]mil.Field{k.Inputs, k.Outputs} {
			for _, f := range fs {
				if f.Role == mil.Activation && (!f.Transposed || f.Cols != b.cfg.Seq) {
					return fmt.Errorf("aneb: kernel %s field %s is not token-major [%d][C]", k.Name, f.Name, b.cfg.Seq)
				}
			}
		}
		for _, f := range k.Outputs {
			if f.Col0 != 0 || f.Cols != f.Width {
				return fmt.Errorf("aneb: kernel %s output %s does not span whole rows", k.Name, f.Name)
			}
		}
	}
	return nil
}

// Async reports whether the model should overlap its weight-gradient GEMMs with this backend's
// calls (model.AsyncBackend): true when the kernels run on a separate accelerator, false on the
// emulator, which evaluates them on the same CPU cores (overlap would only make the two compete),
// unless SetAsync says otherwise.
func (b *Backend) Async() bool { return b.async }

// SetAsync overrides Async (tests force the asynchronous weight gradients on the emulator).
func (b *Backend) SetAsync(on bool) { b.async = on }

// Name is "ane" (whichever device runs the kernels; see DeviceName).
func (b *Backend) Name() string { return "ane" }

// DeviceName is the device's name ("emu", "ane (…)").
func (b *Backend) DeviceName() string { return b.dev.Name() }

// Config is the model config the kernels were generated for.
func (b *Backend) Config() config.Model { return b.cfg }

// Device is the device the kernels run on.
func (b *Backend) Device() device.Device { return b.dev }

// Kernels are the kernels that run (the chosen variants'), fused ones in mil.Names order first.
func (b *Backend) Kernels() []*mil.Kernel {
	var ks []*mil.Kernel
	for i, k := range b.ks {
		if b.use[i] {
			ks = append(ks, k)
		}
	}
	return ks
}

// EvalsPerLayer is the kernel evaluations of one layer on one sequence per micro-step with the
// variants chosen (9 when the attention forward is split).
func (b *Backend) EvalsPerLayer() int {
	if b.split {
		return EvalsPerLayer + 1
	}
	return EvalsPerLayer
}

// CompileTime is the time New took to generate and compile the kernels.
func (b *Backend) CompileTime() time.Duration { return b.compile }

// Evals is the number of kernel evaluations so far.
func (b *Backend) Evals() int64 { return b.evals }

// EvalsPerStep is the number of kernel evaluations between the last two optimizer updates
// (WeightsChanged calls): 8·layers·batch·accum in training; 0 before the first update.
func (b *Backend) EvalsPerStep() int { return int(b.perStep) }

// PeakTFLOPS is the device's fp16 peak (0 for the emulator: it has none).
func (b *Backend) PeakTFLOPS() float64 { return b.dev.PeakTFLOPS() }

// FLOPsPerSequence is FLOPs(config) for this backend's model.
func (b *Backend) FLOPsPerSequence() float64 { return FLOPs(b.cfg) }

// FLOPs is the original's FLOP model of the ANE work in one micro-step on one sequence
// (seed-system §2.11; the weight gradients on the CPU are not counted):
//
//	fwd  = L·(4·D·(D+KV)·S + 2·2·D·F·S + 2·F·D·S)
//	sdpa = L·2·H·5·S²·HD
//	FLOPs = 2·fwd + sdpa
//
// with KV = KV heads·HD (= D for multi-head attention).
func FLOPs(m config.Model) float64 {
	L, D, F, S, H := float64(m.Layers), float64(m.Dim), float64(m.FFN), float64(m.Seq), float64(m.Heads)
	hd := D / math.Max(H, 1)
	kv := float64(m.KV()) * hd
	fwd := L * (4*D*(D+kv)*S + 2*2*D*F*S + 2*F*D*S)
	sdpa := L * 2 * H * 5 * S * S * hd
	return 2*fwd + sdpa
}

// Reset readies the backend for another model of the same config (another run in the same
// process, which on the Neural Engine must not compile again: ane-facts §B3): it forgets the
// staged weights (each layer restages at its next call), the evaluation counts and the compile
// time (nothing is compiled again).
func (b *Backend) Reset() {
	for l := range b.layers {
		b.layers[l].w, b.layers[l].staged = nil, [nKernels]bool{}
	}
	b.evals, b.mark, b.perStep, b.compile = 0, 0, 0, 0
}

// Close releases the inputs, the programs and the device.
func (b *Backend) Close() error {
	for l := range b.layers {
		for _, in := range b.layers[l].in {
			if in != nil {
				in.Close()
			}
		}
	}
	for _, in := range b.free {
		if in != nil {
			in.Close()
		}
	}
	for _, p := range b.progs {
		if p != nil {
			p.Close()
		}
	}
	for i := range b.spare {
		for _, in := range b.spare[i] {
			in.Close()
		}
	}
	b.layers, b.free, b.progs, b.spare = nil, [nKernels]device.Input{}, [nKernels]device.Program{}, [nKernels][]device.Input{}
	if b.dev != nil {
		err := b.dev.Close()
		b.dev = nil
		return err
	}
	return nil
}

// ---- weights ----

// weight is the model matrix a kernel's weight field called name holds (fields are named after
// the model's matrices, each packed from W[out][in] as the model stores it).
func weight(w *model.Layer, name string) ([]float32, error) {
	var p = map[string]*[]float32{"Wq": &w.Wq.W, "Wk": &w.Wk.W, "Wv": &w.Wv.W, "Wo": &w.Wo.W,
		"W1": &w.W1.W, "W2": &w.W2.W, "W3": &w.W3.W}[name]
	if p == nil {
		return nil, fmt.Errorf("aneb: no model weight for kernel field %q", name)
	}
	return *p, nil
}

// stage writes layer l's weights into its input of kernel k, converted to fp16 in buf over w
// goroutines: a field packed as Wᵀ is transposed (encodeT), one packed as W is copied (encode).
func (b *Backend) stage(l, k int, buf *[]uint16, w int) error {
	ls := &b.layers[l]
	for _, f := range b.ks[k].Inputs {
		if f.Role != mil.Weight {
			continue
		}
		src, err := weight(ls.w, f.Name)
		if err != nil {
			return err
		}
		if len(src) != f.Len() {
			return fmt.Errorf("aneb: layer %d %s has %d values, kernel %s wants %d×%d", l, f.Name, len(src), kernelNames[k], f.Channels, f.Cols)
		}
		blk := grow(buf, f.Len())
		if f.Transposed { // src is [Cols][Channels]
			encodeT(blk, src, f.Cols, f.Cols, f.Channels, 1, w)
		} else {
			encode(blk, src, w)
		}
		if err := ls.in[k].WriteFP16(f, blk); err != nil {
			return fmt.Errorf("aneb: staging layer %d %s into %s: %w", l, f.Name, kernelNames[k], err)
		}
	}
	return nil
}

// grow returns (*buf)[:n], reallocating *buf when it is too short.
func grow(buf *[]uint16, n int) []uint16 {
	if cap(*buf) < n {
		*buf = make([]uint16, n)
	}
	return (*buf)[:n]
}

// input returns layer l's input of kernel k with w staged in it: staged on first use, and again
// whenever a call brings a different Layer (another model).
func (b *Backend) input(l, k int, w *model.Layer) (device.Input, error) {
	ls := &b.layers[l]
	if ls.w != w {
		ls.w, ls.staged = w, [nKernels]bool{}
	}
	if !ls.staged[k] {
		if err := b.stage(l, k, &b.blk, b.workers); err != nil {
			return nil, err
		}
		ls.staged[k] = true
	}
	return ls.in[k], nil
}

// WeightsChanged restages every known layer's weights into all its input surfaces, the (layer,
// kernel) pairs in parallel, and records the evaluations since the previous call (EvalsPerStep).
// A layer not seen yet is staged at its first call; a failed staging is retried (and its error
// returned) at the layer's next call.
func (b *Backend) WeightsChanged() {
	if d := b.evals - b.mark; d > 0 {
		b.perStep = d
	}
	b.mark = b.evals
	type job struct{ l, k int }
	var jobs []job
	for l := range b.layers {
		b.layers[l].staged = [nKernels]bool{}
		if b.layers[l].w == nil {
			continue
		}
		for k := range nKernels {
			if b.weighty[k] && b.use[k] {
				jobs = append(jobs, job{l, k})
			}
		}
	}
	w := par.Threads(b.workers)
	bufs := make([][]uint16, w)
	par.Each(w, len(jobs), func(k, i int) {
		// Distinct (l, k) per job: each goroutine writes its own staged entry.
		j := jobs[i]
		b.layers[j.l].staged[j.k] = b.stage(j.l, j.k, &bufs[k], 1) == nil
	})
}

// ---- activations ----

// check refuses a call whose shape is not the compiled one.
func (b *Backend) check(l int, s model.Shape) error {
	m := b.cfg
	switch {
	case l < 0 || l >= len(b.layers):
		return fmt.Errorf("aneb: layer %d: the backend was built for %d layers", l, len(b.layers))
	case s.D != m.Dim || s.H != m.Heads || s.F != m.FFN || s.HD != m.HeadDim():
		return fmt.Errorf("aneb: call with dim %d, heads %d, ffn %d: the kernels were compiled for dim %d, heads %d, ffn %d",
			s.D, s.H, s.F, m.Dim, m.Heads, m.FFN)
	case s.T < 1 || s.T > m.Seq:
		return fmt.Errorf("aneb: call with %d tokens per sequence: the kernels take 1…%d (model.seq)", s.T, m.Seq)
	case s.B < 1 || s.N != s.B*s.T:
		return fmt.Errorf("aneb: call with B = %d, T = %d, N = %d: want B ≥ 1 and N = B·T", s.B, s.T, s.N)
	case (s.Cos != nil) != b.kc.Rope:
		return fmt.Errorf("aneb: call with RoPE %t: the kernels were compiled with RoPE %t", s.Cos != nil, b.kc.Rope)
	}
	b.workers = max(1, s.Workers)
	return nil
}

// rows is rows [q·T, q·T+T) of the token-major matrix x [N, C].
func rows(x []float32, q, T, C int) []float32 { return x[q*T*C : (q+1)*T*C] }

// put writes sequence q (rows [q·T, q·T+T)) of the token-major x [N, C], times scale, into the
// activation field f ([Seq][C]) of in; rows T … Seq−1 are written as 0.
func (b *Backend) put(in device.Input, f mil.Field, x []float32, q, T int, scale float32) error {
	C, S := f.Channels, f.Cols
	blk := grow(&b.blk, C*S)
	encodeT(blk, rows(x, q, T, C), T, S, C, scale, b.workers)
	return in.WriteFP16(f, blk)
}

// into names one output field of a kernel and the token-major matrix [N, C] it is read into.
type into struct {
	name string
	x    []float32
}

// get reads the activation fields outs ([Seq][C] each) of kernel k's last evaluation, times
// scale, into sequence q (rows [q·T, q·T+T)) of their matrices: only the first T columns (the
// real tokens; padding is never read), unless the backend runs the whole-output path, where they
// are decoded from the copy of the whole output surface that eval made.
func (b *Backend) get(k, q, T int, scale float32, outs ...into) error {
	for _, o := range outs {
		f := b.ks[k].Output(o.name)
		C, S := f.Channels, f.Cols
		if b.opts.WholeOutputs {
			decodeT(rows(o.x, q, T, C), b.outs[k][f.Ch0*S:(f.Ch0+C)*S], T, S, C, scale, b.workers)
			continue
		}
		blk := grow(&b.blk, C*T)
		if err := b.progs[k].Read(f.FirstCols(T), blk); err != nil {
			return fmt.Errorf("aneb: %w", err)
		}
		decodeT(rows(o.x, q, T, C), blk, T, T, C, scale, b.workers)
	}
	return nil
}

// hand moves output field out of kernel from's last evaluation into input field f of in, raw
// fp16: surface to surface (device.Program.CopyTo, the original's io_copy), or on the
// whole-output path from the Go copy of the output surface.
func (b *Backend) hand(in device.Input, f mil.Field, from int, out string) error {
	o := b.ks[from].Output(out)
	var err error
	if b.opts.WholeOutputs {
		S := o.Width
		err = in.WriteFP16(f, b.outs[from][o.Ch0*S:(o.Ch0+o.Channels)*S])
	} else {
		err = b.progs[from].CopyTo(o, in, f)
	}
	if err != nil {
		return fmt.Errorf("aneb: %w", err)
	}
	return nil
}

// eval runs kernel k on in; its output stays on the device (get and hand take from it), except
// on the whole-output path, which copies the whole output surface into Go as every evaluation did
// before Read and CopyTo existed.
func (b *Backend) eval(k int, in device.Input) error {
	if err := b.progs[k].Eval(in); err != nil {
		return fmt.Errorf("aneb: %w", err)
	}
	b.evals++
	if b.opts.WholeOutputs {
		if err := b.progs[k].Read(b.ks[k].WholeOutput(), b.outs[k]); err != nil {
			return fmt.Errorf("aneb: %w", err)
		}
	}
	return nil
}

// gradScale returns 2^e such that max |x| over the slices, times 2^e, lies in [8, 16); 1 when they
// are all 0 or hold a NaN or Inf (which then reaches the loss unchanged).
func gradScale(xs ...[]float32) float32 {
	var amax float32
	for _, x := range xs {
		for _, v := range x {
			amax = max(amax, float32(math.Abs(float64(v))))
		}
	}
	if amax == 0 || math.IsNaN(float64(amax)) || math.IsInf(float64(amax), 0) {
		return 1
	}
	_, e := math.Frexp(float64(amax)) // amax = f·2^e, f ∈ [0.5, 1)
	return float32(math.Ldexp(1, min(max(4-e, -120), 120)))
}
