package nb

import (
	"fmt"
	"math"
	"math/rand/v2"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/anelab/anelab/anert/aneb"
	"github.com/anelab/anelab/anert/config"
	"github.com/anelab/anelab/anert/device"
	"github.com/anelab/anelab/anert/model"
	"github.com/anelab/anelab/anert/tensor"
)

// KernelError is how far one output of the ANE backend on the emulator (fp16) is from the CPU
// backend (fp32) on the same inputs.
type KernelError struct {
	Kernel string  // the MIL kernel that produces the output ("… + CPU" when the CPU finishes it)
	Method string  // the model.Backend method
	Output string  // the model.LayerActs field
	MaxAbs float64 // max |ane − cpu|
	Rel    float64 // ‖ane − cpu‖ / ‖cpu‖ (Euclidean norms over the whole tensor)
	MaxRel float64 // max |ane − cpu| / max |cpu|
}

// fp16Unit is fp16's unit roundoff, 2⁻¹¹: the relative error of storing one value.
const fp16Unit = 1.0 / 2048

// CompareKernels runs one layer of m through every model.Backend method twice — on the ANE
// backend over the emulator (anert/aneb on device emu: the MIL kernels, fp16) and on the CPU
// backend (fp32) — with the same random weights and activations (seeded), and measures each
// output. Backward methods start from the CPU's forward activations, so each method's error is
// its own kernels'. Incoming gradients have the model's scale without loss scaling (1e-5).
func CompareKernels(m config.Model, seed uint64) ([]KernelError, error) {
	m.Layers = 1
	r := rand.New(rand.NewPCG(seed, 7))
	D, F, T := m.Dim, m.FFN, m.Seq
	param := func(rows, cols int, std float64) *tensor.Param {
		w := make([]float32, rows*cols)
		fill(r, w, std)
		return &tensor.Param{Shape: []int{rows, cols}, W: w, G: make([]float32, rows*cols)}
	}
	// q, k at 3/√D so that softmax is far from uniform; the rest at 1/√fan_in.
	sd, sf := 1/math.Sqrt(float64(D)), 1/math.Sqrt(float64(F))
	w := &model.Layer{Wq: param(D, D, 3*sd), Wk: param(D, D, 3*sd), Wv: param(D, D, sd), Wo: param(D, D, sd),
		W1: param(F, D, sd), W3: param(F, D, sd), W2: param(D, F, sf)}
	s := layerShape(m, T)

	ane, err := aneb.New(device.NewEmu(), m)
	if err != nil {
		return nil, err
	}
	defer ane.Close()
	cpu := model.NewCPU()
	ac, aa := layerActs(m, T), layerActs(m, T)

	var res []KernelError
	measure := func(kernel, method string, outs ...any) {
		for i := 0; i < len(outs); i += 3 {
			name, got, want := outs[i].(string), outs[i+1].([]float32), outs[i+2].([]float32)
			res = append(res, errorOf(kernel, method, name, got, want))
		}
	}
	run := func(method string, f func(b model.Backend, a *model.LayerActs) error) error {
		if err := f(cpu, ac); err != nil {
			return fmt.Errorf("cpu %s: %w", method, err)
		}
		if err := f(ane, aa); err != nil {
			return fmt.Errorf("ane (emulator) %s: %w", method, err)
		}
		return nil
	}

	fill(r, ac.Xn, 1)
	copy(aa.Xn, ac.Xn)
	if err := run("AttnForward", func(b model.Backend, a *model.LayerActs) error { return b.AttnForward(0, s, w, a) }); err != nil {
		return nil, err
	}
	measure("sdpaWoFwd", "AttnForward", "Q", aa.Q, ac.Q, "K", aa.K, ac.K, "V", aa.V, ac.V, "A", aa.A, ac.A, "O", aa.O, ac.O)

	fill(r, ac.X2n, 1)
	copy(aa.X2n, ac.X2n)
	if err := run("FFNForward", func(b model.Backend, a *model.LayerActs) error { return b.FFNForward(0, s, w, a) }); err != nil {
		return nil, err
	}
	measure("ffnFused", "FFNForward", "H1", aa.H1, ac.H1, "H3", aa.H3, ac.H3, "Gate", aa.Gate, ac.Gate, "Y", aa.Y, ac.Y)

	copy(aa.H1, ac.H1)
	copy(aa.H3, ac.H3)
	fill(r, ac.DY, 1e-5)
	copy(aa.DY, ac.DY)
	if err := run("FFNBackward", func(b model.Backend, a *model.LayerActs) error { return b.FFNBackward(0, s, w, a) }); err != nil {
		return nil, err
	}
	measure("ffnBwdW2t", "FFNBackward", "DGate", aa.DGate, ac.DGate)
	measure("ffnBwdW2t + CPU", "FFNBackward", "DH1", aa.DH1, ac.DH1, "DH3", aa.DH3, ac.DH3)
	measure("ffnBwdW13t", "FFNBackward", "DX2n", aa.DX2n, ac.DX2n)

	copy(aa.Q, ac.Q)
	copy(aa.K, ac.K)
	copy(aa.V, ac.V)
	fill(r, ac.DO, 1e-5)
	copy(aa.DO, ac.DO)
	if err := run("AttnBackward", func(b model.Backend, a *model.LayerActs) error { return b.AttnBackward(0, s, w, a) }); err != nil {
		return nil, err
	}
	measure("wotBwd", "AttnBackward", "DA", aa.DA, ac.DA)
	measure("sdpaBwd1", "AttnBackward", "DV", aa.DV, ac.DV)
	measure("sdpaBwd2", "AttnBackward", "DQ", aa.DQ, ac.DQ, "DK", aa.DK, ac.DK)
	measure("qkvBwd", "AttnBackward", "DXn", aa.DXn, ac.DXn)
	return res, nil
}

func errorOf(kernel, method, name string, got, want []float32) KernelError {
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

func fill(r *rand.Rand, x []float32, std float64) {
	for i := range x {
		x[i] = float32(r.NormFloat64() * std)
	}
}

// layerShape is the model.Shape of a call on one sequence of T tokens, RoPE tables included
// (cos/sin of p·θ^(−2i/HD) at p·HD/2 + i).
func layerShape(m config.Model, T int) model.Shape {
	hd := m.HeadDim()
	s := model.Shape{B: 1, T: T, N: T, D: m.Dim, H: m.Heads, HD: hd, F: m.FFN,
		Scale: float32(1 / math.Sqrt(float64(hd))), Workers: 2}
	if m.Pos == "rope" {
		half := hd / 2
		s.Cos, s.Sin = make([]float32, m.Seq*half), make([]float32, m.Seq*half)
		for p := 0; p < m.Seq; p++ {
			for i := 0; i < half; i++ {
				th := float64(p) * math.Pow(m.RopeTheta, -2*float64(i)/float64(hd))
				s.Cos[p*half+i], s.Sin[p*half+i] = float32(math.Cos(th)), float32(math.Sin(th))
			}
		}
	}
	return s
}

// layerActs allocates every LayerActs field for one sequence of T tokens.
func layerActs(m config.Model, T int) *model.LayerActs {
	n, D, F := T, m.Dim, m.FFN
	f := func(k int) []float32 { return make([]float32, k) }
	return &model.LayerActs{X: f(n * D), Xn: f(n * D), RAtt: f(n), Q: f(n * D), K: f(n * D), V: f(n * D), A: f(n * D),
		LSE: f(n * m.Heads), X2: f(n * D), X2n: f(n * D), RFFN: f(n), H1: f(n * F), H3: f(n * F), Gate: f(n * F),
		O: f(n * D), Y: f(n * D), DY: f(n * D), DGate: f(n * F), DH1: f(n * F), DH3: f(n * F), DX2n: f(n * D),
		DO: f(n * D), DA: f(n * D), DQ: f(n * D), DK: f(n * D), DV: f(n * D), DXn: f(n * D)}
}

// KernelErrors shows CompareKernels(m, 1) as a table and a chart of the relative error of each
// output, against fp16's unit roundoff.
func KernelErrors(m config.Model) {
	res, err := CompareKernels(m, 1)
	check(err)
	var cols [6][]string
	for _, k := range res {
		cols[0] = append(cols[0], k.Kernel)
		cols[1] = append(cols[1], k.Method)
		cols[2] = append(cols[2], k.Output)
		cols[3] = append(cols[3], Num(k.MaxAbs))
		cols[4] = append(cols[4], Num(k.Rel))
		cols[5] = append(cols[5], Num(k.MaxRel))
	}
	h, t := stringTable([]string{"kernel", "method", "output", "max abs", "rel ‖Δ‖/‖cpu‖", "max abs / max |cpu|"}, cols[:],
		[]bool{false, false, false, true, true, true})
	png, err := kernelErrorPNG(res)
	check(err)
	out.PNG(png, "kernel-errors")
	out.HTML(h, t)
	out.Sync()
}

// kernelErrorPNG draws each output's relative error on a log axis, with fp16's unit roundoff.
func kernelErrorPNG(res []KernelError) ([]byte, error) {
	p := plot.New()
	p.Title.Text = "ANE kernels on the emulator (fp16) against the CPU (fp32)"
	p.Y.Label.Text = "relative error |ane - cpu| / |cpu|"
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = logNumTicks{}
	p.Add(plotter.NewGrid())
	var pts plotter.XYs
	var names []string
	lo, hi := fp16Unit, fp16Unit
	for i, k := range res {
		if finite(k.Rel) && k.Rel > 0 {
			pts = append(pts, plotter.XY{X: float64(i), Y: k.Rel})
			lo, hi = math.Min(lo, k.Rel), math.Max(hi, k.Rel)
		}
		names = append(names, k.Output)
	}
	if len(pts) == 0 {
		return nil, fmt.Errorf("no finite errors to plot")
	}
	s, err := plotter.NewScatter(pts)
	if err != nil {
		return nil, err
	}
	s.GlyphStyle = draw.GlyphStyle{Color: plotutil.Color(0), Radius: vg.Points(4), Shape: draw.CircleGlyph{}}
	ref, err := plotter.NewLine(plotter.XYs{{X: -0.5, Y: fp16Unit}, {X: float64(len(res)) - 0.5, Y: fp16Unit}})
	if err != nil {
		return nil, err
	}
	ref.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
	ref.Color = plotutil.Color(1)
	p.Add(s, ref)
	p.Legend.Add("output (its kernel in the table)", s)
	p.Legend.Add("fp16 unit roundoff 2^-11 = 4.9e-4", ref)
	p.Legend.Top = true
	p.X.Min, p.X.Max = -0.5, float64(len(res))-0.5
	p.Y.Min, p.Y.Max = lo/3, hi*10
	p.NominalX(names...)
	return pngBytes(p, 8, 3.5)
}
