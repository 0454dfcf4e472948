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
	"github.com/anelab/anelab/internal/num"
)

// KernelError is how far one output of the ANE backend on the emulator (fp16) is from the CPU
// backend (fp32) on the same inputs.
type KernelError = aneb.KernelError

// fp16Unit is fp16's unit roundoff, 2⁻¹¹: the relative error of storing one value.
const fp16Unit = 1.0 / 2048

// CompareKernels runs one layer of m through every model.Backend method twice — on the ANE
// backend over the emulator (anert/aneb on device emu: the MIL kernels, fp16) and on the CPU
// backend (fp32) — with the same random weights and activations (seeded), and measures each
// output (aneb.CompareCPU on one sequence of m.Seq tokens). Backward methods start from the CPU's
// forward activations, so each method's error is its own kernels'. Incoming gradients have the
// model's scale without loss scaling (1e-5).
func CompareKernels(m config.Model, seed uint64) ([]KernelError, error) {
	m.Layers = 1
	ane, err := aneb.New(device.NewEmu(), m)
	if err != nil {
		return nil, err
	}
	defer ane.Close()
	return aneb.CompareCPU(ane, 1, m.Seq, 1e-5, rand.New(rand.NewPCG(seed, 7)))
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
		if num.Finite(k.Rel) && k.Rel > 0 {
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
