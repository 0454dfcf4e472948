// Package plots draws the lab's progress chart with gonum/plot, as the original's
// plot_progress.py does: every run with a usable val_loss as a dot (kept green, discarded
// grey), the running best of kept runs as a green staircase, and each new record annotated with
// its description.
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
	dark  = color.RGBA{0x33, 0x33, 0x33, 0xff}
)

// Point is one plotted run.
type Point struct {
	X      int // index among plotted runs (0-based, recording order)
	Loss   float64
	Kept   bool
	Record bool   // a kept run that lowered the running best
	Label  string // annotation for records
}

// Points selects and labels the runs to plot, as plot_progress.py does: runs with
// 0 < val_loss < 10 in recording order (failures carry no loss and are skipped); a kept run that
// beats every earlier kept run is a record, labelled by its description cut at "(" and
// shortened to 45 characters.
func Points(runs []ledger.Run) []Point {
	var pts []Point
	best := math.Inf(1)
	for _, r := range runs {
		if !(r.ValLoss > 0 && r.ValLoss < 10) {
			continue
		}
		p := Point{X: len(pts), Loss: r.ValLoss, Kept: r.Decision == ledger.Keep}
		if p.Kept && r.ValLoss < best {
			best = r.ValLoss
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
	pts := Points(runs)
	if len(pts) == 0 {
		return nil, fmt.Errorf("no run with a val_loss to plot yet (run an experiment first: anelab run scripts/baseline.go)")
	}
	p := plot.New()
	kept := 0
	var keptXY, discXY, stairs plotter.XYs
	var recXY plotter.XYs
	var recLabels []string
	for _, q := range pts {
		xy := plotter.XY{X: float64(q.X), Y: q.Loss}
		if q.Kept {
			kept++
			keptXY = append(keptXY, xy)
		} else {
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
	p.Y.Label.Text = "Validation loss (lower is better)"
	p.Add(plotter.NewGrid())

	if len(discXY) > 0 {
		s, err := plotter.NewScatter(discXY)
		if err != nil {
			return nil, err
		}
		s.GlyphStyle = draw.GlyphStyle{Color: grey, Radius: vg.Points(3), Shape: draw.CircleGlyph{}}
		p.Add(s)
		p.Legend.Add("discarded", s)
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
