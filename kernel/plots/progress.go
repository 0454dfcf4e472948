// Package plots draws the lab's progress chart with gonum/plot, as the original's
// plot_progress.py does, in val_bpb: every run with a usable val_bpb as a dot (kept green,
// within-noise amber, discarded grey), the running best of kept runs as a green staircase with
// the lab's noise band around it (± the measured seed-to-seed σ), and each new record annotated
// with its description.
package plots

import (
	"fmt"
	"image/color"
	"math"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"

	"github.com/anelab/anelab/kernel/ledger"
)

var (
	green = color.RGBA{0x2e, 0xcc, 0x71, 0xff} // #2ecc71, the original's
	grey  = color.RGBA{0xc8, 0xc8, 0xc8, 0xff} // matplotlib "lightgray"-ish
	amber = color.RGBA{0xf3, 0x9c, 0x12, 0xff}
	band  = color.NRGBA{0x2e, 0xcc, 0x71, 0x38} // the noise band: translucent green
	dark  = color.RGBA{0x33, 0x33, 0x33, 0xff}
)

// Point is one plotted run.
type Point struct {
	X      int     // index among plotted runs (0-based, recording order)
	Loss   float64 // val_bpb (val_loss for runs that report no bpb)
	Kept   bool
	Noise  bool   // within-noise: not distinguishable from the head
	Record bool   // a kept run that lowered the running best
	Label  string // annotation for records
}

// Points selects and labels the runs to plot, as plot_progress.py does: ok runs with
// 0 < val_bpb < 10 in recording order (failures carry no loss and are skipped); a kept run that
// beats every earlier kept run is a record, labelled by its description cut at "(" and
// shortened to 45 characters.
func Points(runs []ledger.Run) []Point {
	var pts []Point
	best := math.Inf(1)
	for _, r := range runs {
		m := r.Metric()
		if (r.Status != "" && !r.HasLoss()) || !(m > 0 && m < 10) {
			continue
		}
		p := Point{X: len(pts), Loss: m, Kept: r.Decision == ledger.Keep, Noise: r.Decision == ledger.WithinNoise}
		if p.Kept && m < best {
			best = m
			p.Record = true
			p.Label = label(r.Description)
		}
		pts = append(pts, p)
	}
	return pts
}

func label(desc string) string {
	if i := strings.IndexByte(desc, '('); i > 0 {
		desc = desc[:i]
	}
	desc = strings.TrimSpace(desc)
	if r := []rune(desc); len(r) > 45 {
		desc = string(r[:44]) + "…"
	}
	return desc
}

// Progress draws the chart of runs and returns it as PNG bytes (width × height inches at 150 dpi).
func Progress(runs []ledger.Run, width, height vg.Length) ([]byte, error) {
	return ProgressNoise(runs, 0, width, height)
}

// NoiseFor picks the noise floor to draw for runs: the one measured under the budget of the last
// record (the running best the band surrounds); 0 when there is none.
func NoiseFor(runs []ledger.Run, floors []ledger.NoiseFloor) float64 {
	budget := ""
	best := math.Inf(1)
	for _, r := range runs {
		if r.Decision == ledger.Keep && r.HasLoss() && r.Metric() < best {
			best, budget = r.Metric(), r.Budget
		}
	}
	for _, f := range floors {
		if f.Budget == budget && budget != "" {
			return f.SD
		}
	}
	return 0
}

// ProgressNoise is Progress with the noise band: the running best ± sd (the lab's seed-to-seed
// σ of val_bpb; 0 draws none).
func ProgressNoise(runs []ledger.Run, sd float64, width, height vg.Length) ([]byte, error) {
	pts := Points(runs)
	if len(pts) == 0 {
		return nil, fmt.Errorf("no run with a val_bpb to plot yet (run an experiment first: anelab run scripts/baseline.go)")
	}
	p := plot.New()
	kept := 0
	var keptXY, discXY, noiseXY, stairs plotter.XYs
	var recXY plotter.XYs
	var recLabels []string
	for _, q := range pts {
		xy := plotter.XY{X: float64(q.X), Y: q.Loss}
		switch {
		case q.Kept:
			kept++
			keptXY = append(keptXY, xy)
		case q.Noise:
			noiseXY = append(noiseXY, xy)
		default:
			discXY = append(discXY, xy)
		}
		if q.Record {
			stairs = append(stairs, xy)
			recXY = append(recXY, xy)
			recLabels = append(recLabels, q.Label)
		}
	}
	p.Title.Text = fmt.Sprintf("anelab progress: %d experiments, %d kept improvements", len(pts), kept)
	p.X.Label.Text = "Experiment #"
	p.Y.Label.Text = "val_bpb (lower is better)"
	p.Add(plotter.NewGrid())
	if len(stairs) > 0 && sd > 0 {
		// The band follows the staircase: best ± σ from each record to the next, to the last run.
		var upper, lower plotter.XYs
		for i, s := range stairs {
			end := float64(pts[len(pts)-1].X)
			if i+1 < len(stairs) {
				end = stairs[i+1].X
			} else {
				end = math.Max(end, s.X+0.5) // a record on the last run still shows its band
			}
			upper = append(upper, plotter.XY{X: s.X, Y: s.Y + sd}, plotter.XY{X: end, Y: s.Y + sd})
			lower = append(lower, plotter.XY{X: s.X, Y: s.Y - sd}, plotter.XY{X: end, Y: s.Y - sd})
		}
		ring := append(plotter.XYs(nil), upper...)
		for i := len(lower) - 1; i >= 0; i-- {
			ring = append(ring, lower[i])
		}
		poly, err := plotter.NewPolygon(ring)
		if err != nil {
			return nil, err
		}
		poly.Color, poly.LineStyle.Width = band, 0
		p.Add(poly)
		p.Legend.Add(fmt.Sprintf("noise floor ±σ (%.4f)", sd), poly)
	}

	if len(discXY) > 0 {
		s, err := plotter.NewScatter(discXY)
		if err != nil {
			return nil, err
		}
		s.GlyphStyle = draw.GlyphStyle{Color: grey, Radius: vg.Points(3), Shape: draw.CircleGlyph{}}
		p.Add(s)
		p.Legend.Add("discarded", s)
	}
	if len(noiseXY) > 0 {
		s, err := plotter.NewScatter(noiseXY)
		if err != nil {
			return nil, err
		}
		s.GlyphStyle = draw.GlyphStyle{Color: amber, Radius: vg.Points(3.5), Shape: draw.CircleGlyph{}}
		p.Add(s)
		p.Legend.Add("within noise", s)
	}
	if len(stairs) > 0 {
		// Extend the staircase to the last run, so the current best reads across the chart.
		last := plotter.XY{X: float64(pts[len(pts)-1].X), Y: stairs[len(stairs)-1].Y}
		line, err := plotter.NewLine(append(append(plotter.XYs(nil), stairs...), last))
		if err != nil {
			return nil, err
		}
		line.StepStyle = plotter.PostStep
		line.Color = green
		line.Width = vg.Points(2)
		p.Add(line)
		p.Legend.Add("running best", line)
	}
	if len(keptXY) > 0 {
		s, err := plotter.NewScatter(keptXY)
		if err != nil {
			return nil, err
		}
		s.GlyphStyle = draw.GlyphStyle{Color: green, Radius: vg.Points(4.5), Shape: draw.CircleGlyph{}}
		p.Add(s)
		p.Legend.Add("kept", s)
	}
	if len(recXY) > 0 {
		labels, err := plotter.NewLabels(plotter.XYLabels{XYs: recXY, Labels: recLabels})
		if err != nil {
			return nil, err
		}
		for i := range labels.TextStyle {
			labels.TextStyle[i].Rotation = math.Pi / 4
			labels.TextStyle[i].Color = dark
			labels.TextStyle[i].Font.Size = vg.Points(7)
		}
		labels.Offset = vg.Point{X: vg.Points(4), Y: vg.Points(4)}
		p.Add(labels)
	}

	// y-limits as the original: [min − 5% of the range, max + 35% of the range] over values < 8.
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, q := range pts {
		if q.Loss < 8 {
			lo, hi = math.Min(lo, q.Loss), math.Max(hi, q.Loss)
		}
	}
	if len(stairs) > 0 && sd > 0 {
		lo = math.Min(lo, stairs[len(stairs)-1].Y-sd)
	}
	if !math.IsInf(lo, 0) {
		r := hi - lo
		if r == 0 {
			r = math.Max(0.1*math.Abs(hi), 0.01)
		}
		p.Y.Min, p.Y.Max = lo-0.05*r, hi+0.35*r
	}
	p.X.Min, p.X.Max = -0.5, float64(len(pts))-0.5
	p.Legend.Top = true

	c := vgimg.NewWith(vgimg.UseWH(width, height), vgimg.UseDPI(150))
	p.Draw(draw.New(c))
	var buf strings.Builder
	if _, err := (vgimg.PngCanvas{Canvas: c}).WriteTo(&buf); err != nil {
		return nil, err
	}
	return []byte(buf.String()), nil
}
