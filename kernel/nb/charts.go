package nb

import (
	"fmt"
	"math"
	"sort"

	"github.com/go-gota/gota/dataframe"
	"gonum.org/v1/plot/vg"

	"github.com/anelab/anelab/internal/num"
	"github.com/anelab/anelab/kernel/ledger"
	"github.com/anelab/anelab/kernel/plots"
)

// Progress shows the lab's progress chart (kernel/plots, as `anelab plot`'s progress.png): every
// run's val_bpb in recording order, kept runs green, within-noise amber, the running best as a
// staircase inside the lab's noise band (± the measured σ). lineage "" plots every lineage.
func Progress(lineage string) {
	report(progressChart(lineage))
}

func progressChart(lineage string) error {
	l, err := ledger.Open(LabDir())
	if err != nil {
		return err
	}
	defer l.Close()
	runs, err := l.Runs(bg, lineage)
	if err != nil {
		return err
	}
	floors, err := l.NoiseFloors(bg)
	if err != nil {
		return err
	}
	png, err := plots.ProgressNoise(runs, plots.NoiseFor(runs, floors), 7*vg.Inch, 4*vg.Inch)
	if err != nil {
		Note("%v", err)
		return nil
	}
	out.PNG(png, "progress")
	out.Sync()
	return nil
}

// Curves overlays the training-loss curves of the named runs (names as Get takes them).
//
//	nb.Curves("baseline", "best", "last:*")
func Curves(names ...string) {
	report(curves(names))
}

func curves(names []string) error {
	if len(names) == 0 {
		return fmt.Errorf("nb.Curves: name at least one run (an id, \"best\", \"baseline\", \"last\")")
	}
	l, err := ledger.Open(LabDir())
	if err != nil {
		return err
	}
	defer l.Close()
	var series []curveSeries
	for _, n := range names {
		r, err := resolve(l, n)
		if err != nil {
			return err
		}
		pts, err := Curve(r.ID)
		if err != nil {
			return err
		}
		label := shortID(r.ID)
		if n != r.ID {
			label = n + " " + label
		}
		if r.Status == ledger.StatusOK {
			label += fmt.Sprintf(" (val %s)", Num(r.ValLoss))
		} else {
			label += " (" + r.Status + ")"
		}
		series = append(series, curveSeries{Name: label, Points: pts})
	}
	png, err := lossPNG("training loss", series, 7, 4)
	if err != nil {
		return err
	}
	out.PNG(png, "curves")
	out.Sync()
	return nil
}

// shortID is a run id's random suffix with its time ("r20261125T101500Z-3fa9c2" → "3fa9c2").
func shortID(id string) string {
	if len(id) > 7 && id[len(id)-7] == '-' {
		return id[len(id)-6:]
	}
	return id
}

// HyperParam plots val_loss against one column of df, a frame of Runs (a config field such as
// "optim.lr", "train.batch" or "model.dim"), across its ok runs, on a log axis when the values
// are positive and span more than a factor of 20 (learning rates), with a table of the best
// and mean val_loss at each value.
//
//	nb.HyperParam(nb.Where(nb.Runs(), "lineage", "==", "main"), "optim.lr")
func HyperParam(df dataframe.DataFrame, col string) {
	report(hyperParam(df, col))
}

func hyperParam(df dataframe.DataFrame, col string) error {
	if df.Err != nil {
		return df.Err
	}
	if df.Nrow() == 0 {
		return noData{fmt.Errorf("no runs to plot yet")}
	}
	ok := Where(df, "status", "==", ledger.StatusOK)
	if ok.Err != nil {
		return ok.Err
	}
	xs, err := floatCol(ok, col)
	if err != nil {
		return fmt.Errorf("nb.HyperParam: %w", err)
	}
	ys, err := floatCol(ok, "val_loss")
	if err != nil {
		return err
	}
	lo, hi := math.Inf(1), math.Inf(-1)
	best, bestX := math.Inf(1), math.NaN()
	for i := range xs {
		if num.Finite(xs[i]) && num.Finite(ys[i]) {
			lo, hi = math.Min(lo, xs[i]), math.Max(hi, xs[i])
			if ys[i] < best {
				best, bestX = ys[i], xs[i]
			}
		}
	}
	if math.IsInf(best, 1) {
		return noData{fmt.Errorf("no ok run has a %s to plot", col)}
	}
	logX := lo > 0 && hi/lo > 20
	png, err := scatterPNG(fmt.Sprintf("val_loss against %s (%d ok runs)", col, len(xs)), col, "val_loss", xs, ys, logX)
	if err != nil {
		return err
	}
	out.PNG(png, "hyperparam-"+col)
	// One line per distinct value: how many runs, their best and mean val_loss.
	type agg struct {
		n          int
		best, mean float64
	}
	groups := map[float64]*agg{}
	for i := range xs {
		if !num.Finite(xs[i]) || !num.Finite(ys[i]) {
			continue
		}
		g := groups[xs[i]]
		if g == nil {
			g = &agg{best: math.Inf(1)}
			groups[xs[i]] = g
		}
		g.n++
		g.best = math.Min(g.best, ys[i])
		g.mean += ys[i]
	}
	keys := make([]float64, 0, len(groups))
	for k := range groups {
		keys = append(keys, k)
	}
	sort.Float64s(keys)
	var cols [4][]string
	for _, k := range keys {
		g := groups[k]
		cols[0] = append(cols[0], Num(k))
		cols[1] = append(cols[1], Num(float64(g.n)))
		cols[2] = append(cols[2], Num(g.best))
		cols[3] = append(cols[3], Num(g.mean/float64(g.n)))
	}
	h, t := stringTable([]string{col, "runs", "best val_loss", "mean val_loss"}, cols[:], []bool{true, true, true, true})
	out.HTML(h+fmt.Sprintf("<p>lowest val_loss %s at %s = %s</p>", Num(best), esc(col), Num(bestX)),
		t+fmt.Sprintf("\nlowest val_loss %s at %s = %s", Num(best), col, Num(bestX)))
	out.Sync()
	return nil
}
