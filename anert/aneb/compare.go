package aneb

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/anelab/anelab/anert/config"
	"github.com/anelab/anelab/anert/mil"
	"github.com/anelab/anelab/anert/model"
	"github.com/anelab/anelab/anert/tensor"
)

// KernelError is how far one output of the ANE backend is from the CPU backend (fp32) on the same
// inputs.
type KernelError struct {
	Kernel string  // the MIL kernel that produces the output ("… + CPU" when the CPU finishes it)
	Method string  // the model.Backend method
	Output string  // the model.LayerActs field
	MaxAbs float64 // max |ane − cpu|
	Rel    float64 // ‖ane − cpu‖ / ‖cpu‖ (Euclidean norms over the whole tensor); NaN when cpu is 0
	MaxRel float64 // max |ane − cpu| / max |cpu|; NaN when cpu is 0
}

// CompareCPU runs layer 0 through every model.Backend method twice — on b and on the CPU backend
// (model.NewCPU, fp32) — for B sequences of T tokens, with the same random weights and activations
// drawn from r, and measures each output. Weights: q, k projections at 3/√D so that softmax is far
// from uniform, the others at 1/√fan_in; inputs xn, x2n at 1; incoming gradients dy, do at dyStd.
// Backward methods start from the CPU's forward activations, so each method's error is its own
// kernels'. Outputs, in order: sdpaWoFwd → Q K V A O, ffnFused → H1 H3 Gate Y, ffnBwdW2t → DGate
// (then DH1, DH3 by the CPU SwiGLU backward), ffnBwdW13t → DX2n, wotBwd → DA, sdpaBwd1 → DV,
// sdpaBwd2 → DQ DK, qkvBwd → DXn.
func CompareCPU(b *Backend, B, T int, dyStd float64, r *rand.Rand) ([]KernelError, error) {
	m := b.Config()
	w := layer(r, m)
	s := shape(m, B, T)
	cpu := model.NewCPU()
	ac, aa := acts(m, B, T), acts(m, B, T)

	var res []KernelError
	measure := func(kernel, method string, outs ...any) {
		for i := 0; i < len(outs); i += 3 {
			name, got, want := outs[i].(string), outs[i+1].([]float32), outs[i+2].([]float32)
			res = append(res, kernelError(kernel, method, name, got, want))
		}
	}
	run := func(method string, f func(b model.Backend, a *model.LayerActs) error) error {
		if err := f(cpu, ac); err != nil {
			return fmt.Errorf("cpu %s: %w", method, err)
		}
		if err := f(b, aa); err != nil {
			return fmt.Errorf("ane (%s) %s: %w", b.DeviceName(), method, err)
		}
		return nil
	}

	fill(r, ac.Xn, 1)
	copy(aa.Xn, ac.Xn)
	if err := run("AttnForward", func(b model.Backend, a *model.LayerActs) error { return b.AttnForward(0, s, w, a) }); err != nil {
		return nil, err
	}
	measure(mil.AttnFwd, "AttnForward", "Q", aa.Q, ac.Q, "K", aa.K, ac.K, "V", aa.V, ac.V, "A", aa.A, ac.A, "O", aa.O, ac.O)

	fill(r, ac.X2n, 1)
	copy(aa.X2n, ac.X2n)
	if err := run("FFNForward", func(b model.Backend, a *model.LayerActs) error { return b.FFNForward(0, s, w, a) }); err != nil {
		return nil, err
	}
	measure(mil.FFNFwd, "FFNForward", "H1", aa.H1, ac.H1, "H3", aa.H3, ac.H3, "Gate", aa.Gate, ac.Gate, "Y", aa.Y, ac.Y)

	// Backward from the same saved activations (the CPU's fp32 forward), so that only the
	// backward differs.
	copy(aa.H1, ac.H1)
	copy(aa.H3, ac.H3)
	fill(r, ac.DY, dyStd)
	copy(aa.DY, ac.DY)
	if err := run("FFNBackward", func(b model.Backend, a *model.LayerActs) error { return b.FFNBackward(0, s, w, a) }); err != nil {
		return nil, err
	}
	measure(mil.FFNBwdW2, "FFNBackward", "DGate", aa.DGate, ac.DGate)
	measure(mil.FFNBwdW2+" + CPU", "FFNBackward", "DH1", aa.DH1, ac.DH1, "DH3", aa.DH3, ac.DH3)
	measure(mil.FFNBwdW13, "FFNBackward", "DX2n", aa.DX2n, ac.DX2n)

	copy(aa.Q, ac.Q)
	copy(aa.K, ac.K)
	copy(aa.V, ac.V)
	fill(r, ac.DO, dyStd)
	copy(aa.DO, ac.DO)
	if err := run("AttnBackward", func(b model.Backend, a *model.LayerActs) error { return b.AttnBackward(0, s, w, a) }); err != nil {
		return nil, err
	}
	measure(mil.WoBwd, "AttnBackward", "DA", aa.DA, ac.DA)
	measure(mil.AttnBwd1, "AttnBackward", "DV", aa.DV, ac.DV)
	measure(mil.AttnBwd2, "AttnBackward", "DQ", aa.DQ, ac.DQ, "DK", aa.DK, ac.DK)
	measure(mil.QKVBwd, "AttnBackward", "DXn", aa.DXn, ac.DXn)
	return res, nil
}

// kernelError measures got against want: max |got − want|, ‖got − want‖/‖want‖ and
// max |got − want| / max |want|.
func kernelError(kernel, method, name string, got, want []float32) KernelError {
	var d2, n2, maxAbs, maxRef float64
	for i := range want {
		e := float64(got[i]) - float64(want[i])
		d2 += e * e
		n2 += float64(want[i]) * float64(want[i])
		maxAbs = math.Max(maxAbs, math.Abs(e))
		maxRef = math.Max(maxRef, math.Abs(float64(want[i])))
	}
	k := KernelError{Kernel: kernel, Method: method, Output: name, MaxAbs: maxAbs, Rel: math.NaN(), MaxRel: math.NaN()}
	if n2 > 0 {
		k.Rel = math.Sqrt(d2 / n2)
	}
	if maxRef > 0 {
		k.MaxRel = maxAbs / maxRef
	}
	return k
}

// layer draws one block's weights: q, k projections 3/√D so that softmax is far from uniform,
// the others 1/√fan_in.
func layer(r *rand.Rand, m config.Model) *model.Layer {
	D, F := m.Dim, m.FFN
	p := func(rows, cols int, std float64) *tensor.Param {
		w := make([]float32, rows*cols)
		fill(r, w, std)
		return &tensor.Param{Shape: []int{rows, cols}, W: w, G: make([]float32, rows*cols)}
	}
	sd, sf := 1/math.Sqrt(float64(D)), 1/math.Sqrt(float64(F))
	return &model.Layer{Wq: p(D, D, 3*sd), Wk: p(D, D, 3*sd), Wv: p(D, D, sd), Wo: p(D, D, sd),
		W1: p(F, D, sd), W3: p(F, D, sd), W2: p(D, F, sf)}
}

// acts allocates every LayerActs field for B sequences of T tokens.
func acts(m config.Model, B, T int) *model.LayerActs {
	n, D, F := B*T, m.Dim, m.FFN
	f := func(k int) []float32 { return make([]float32, k) }
	return &model.LayerActs{X: f(n * D), Xn: f(n * D), RAtt: f(n), Q: f(n * D), K: f(n * D), V: f(n * D), A: f(n * D),
		LSE: f(n * m.Heads), X2: f(n * D), X2n: f(n * D), RFFN: f(n), H1: f(n * F), H3: f(n * F), Gate: f(n * F),
		O: f(n * D), Y: f(n * D), DY: f(n * D), DGate: f(n * F), DH1: f(n * F), DH3: f(n * F), DX2n: f(n * D),
		DO: f(n * D), DA: f(n * D), DQ: f(n * D), DK: f(n * D), DV: f(n * D), DXn: f(n * D)}
}

// fill sets x to normal draws of standard deviation std.
func fill(r *rand.Rand, x []float32, std float64) {
	for i := range x {
		x[i] = float32(r.NormFloat64() * std)
	}
}

// shape is the model's Shape of a call on B sequences of T tokens (as model.Model.shape builds
// it), RoPE tables (model.RopeTables) included.
func shape(m config.Model, B, T int) model.Shape {
	hd := m.HeadDim()
	s := model.Shape{B: B, T: T, N: B * T, D: m.Dim, H: m.Heads, HD: hd, F: m.FFN,
		Scale: float32(1 / math.Sqrt(float64(hd))), Workers: 2}
	if m.Pos == "rope" {
		s.Cos, s.Sin = model.RopeTables(m.Seq, hd, m.RopeTheta)
	}
	return s
}
