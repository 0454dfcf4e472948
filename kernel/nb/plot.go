package nb

import (
	"bytes"
	"fmt"
	"math"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"

	"github.com/anelab/anelab/anert/train"
	"github.com/anelab/anelab/internal/num"
)

// curveSeries is one named loss curve.
type curveSeries struct {
	Name   string
	Points []train.Point
}

// lossPNG draws loss against step for each series, w×h inches at 96 dpi. Non-finite losses are
// skipped (gonum/plot refuses them).
func lossPNG(title string, series []curveSeries, w, h float64) ([]byte, error) {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = "step"
	p.Y.Label.Text = "train loss"
	p.Add(plotter.NewGrid())
	p.Legend.Top = true
	p.X.Tick.Marker, p.Y.Tick.Marker = numTicks{}, numTicks{}
	drawn := 0
	for i, s := range series {
		xys := make(plotter.XYs, 0, len(s.Points))
		for _, pt := range s.Points {
			if !math.IsNaN(pt.Loss) && !math.IsInf(pt.Loss, 0) {
				xys = append(xys, plotter.XY{X: float64(pt.Step), Y: pt.Loss})
			}
		}
		if len(xys) == 0 {
			continue
		}
		l, err := plotter.NewLine(xys)
		if err != nil {
			return nil, err
		}
		l.Color = plotutil.Color(i)
		l.Dashes = plotutil.Dashes(i / 7)
		p.Add(l)
		if len(series) > 1 || s.Name != "" {
			p.Legend.Add(s.Name, l)
		}
		drawn++
	}
	if drawn == 0 {
		return nil, fmt.Errorf("no finite loss points to plot")
	}
	return pngBytes(p, w, h)
}

// scatterPNG draws y against x as points, with a label per point when labels is given.
func scatterPNG(title, xName, yName string, xs, ys []float64, logX bool) ([]byte, error) {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = xName
	p.Y.Label.Text = yName
	p.Add(plotter.NewGrid())
	pts := make(plotter.XYs, 0, len(xs))
	for i := range xs {
		if num.Finite(xs[i]) && num.Finite(ys[i]) && (!logX || xs[i] > 0) {
			pts = append(pts, plotter.XY{X: xs[i], Y: ys[i]})
		}
	}
	if len(pts) == 0 {
		return nil, fmt.Errorf("no runs with a finite %s and %s to plot", xName, yName)
	}
	s, err := plotter.NewScatter(pts)
	if err != nil {
		return nil, err
	}
	s.GlyphStyle.Color = plotutil.Color(0)
	s.GlyphStyle.Radius = vg.Points(3)
	p.Add(s)
	p.X.Tick.Marker, p.Y.Tick.Marker = numTicks{}, numTicks{}
	// Keep the points off the frame: 5% of the range around them (a factor of 1.5 on a log axis).
	xmin, xmax, ymin, ymax := plotter.XYRange(pts)
	if logX {
		p.X.Scale = plot.LogScale{}
		p.X.Tick.Marker = logNumTicks{}
		p.X.Min, p.X.Max = xmin/1.5, xmax*1.5
	} else {
		pad := 0.05 * math.Max(xmax-xmin, math.Abs(xmax)*0.1+1e-12)
		p.X.Min, p.X.Max = xmin-pad, xmax+pad
	}
	pad := 0.05 * math.Max(ymax-ymin, math.Abs(ymax)*0.02+1e-12)
	p.Y.Min, p.Y.Max = ymin-pad, ymax+pad
	return pngBytes(p, 6, 3.5)
}

// numTicks are gonum's default ticks labelled by Num ("250", not "250.00").
type numTicks struct{}

func (numTicks) Ticks(min, max float64) []plot.Tick {
	ts := plot.DefaultTicks{}.Ticks(min, max)
	for i := range ts {
		if ts[i].Label != "" {
			ts[i].Label = Num(ts[i].Value)
		}
	}
	return ts
}

// logNumTicks are log ticks with a label at 1, 2 and 5 times each power of ten, labelled by Num.
type logNumTicks struct{}

func (logNumTicks) Ticks(min, max float64) []plot.Tick {
	var ts []plot.Tick
	for e := math.Floor(math.Log10(min)); math.Pow(10, e) <= max; e++ {
		for m := 1.0; m < 10; m++ {
			v := m * math.Pow(10, e)
			if v < min || v > max {
				continue
			}
			t := plot.Tick{Value: v}
			if m == 1 || m == 2 || m == 5 {
				t.Label = Num(v)
			}
			ts = append(ts, t)
		}
	}
	return ts
}

func pngBytes(p *plot.Plot, w, h float64) ([]byte, error) {
	wt, err := p.WriterTo(vg.Length(w)*vg.Inch, vg.Length(h)*vg.Inch, "png")
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if _, err := wt.WriteTo(&buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
