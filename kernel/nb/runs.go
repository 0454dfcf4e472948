package nb

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/go-gota/gota/dataframe"
	"github.com/go-gota/gota/series"

	"github.com/anelab/anelab/anert/config"
	"github.com/anelab/anelab/anert/train"
	"github.com/anelab/anelab/kernel/ledger"
	"github.com/anelab/anelab/kernel/verdict"
)

// Brief is the column set Show uses for a ledger frame when asked for nb.Brief...: who, how it
// ended, the metrics, the usual hyperparameters, what it tried.
var Brief = []string{"id", "lineage", "mark", "val_bpb", "val_loss", "delta_vs_head", "margin", "test", "steps",
	"tokens_per_s", "budget", "optim.name", "optim.lr", "train.batch", "model.dim", "model.layers", "description"}

// Runs is the ledger as a DataFrame, one row per run in recording order, with these columns:
//
//	seq id lineage status decision mark description val_loss val_bpb train_loss steps tokens
//	tokens_per_s ms_per_step wall_time_s util_pct params parent script started budget test
//	delta_vs_head margin noise_sd verdict config_hash
//
// and then every config field by its JSON path: model.dim, optim.lr, train.batch,
// train.budget_s (seconds), backend … (see anert/config). mark is what results.tsv says: keep,
// within-noise or discard for an ok run, else the status. delta_vs_head is val_bpb minus the
// head's pooled mean when the run was decided (negative is better), margin what it had to beat,
// test which rule decided (kernel/verdict). Metrics of runs that are not ok are NaN (empty in
// tables), so they never win a sort. An empty or missing ledger gives a frame with no rows.
func Runs() dataframe.DataFrame {
	runs, err := ledgerRuns()
	if err != nil {
		return dataframe.DataFrame{Err: err}
	}
	return runsFrame(runs)
}

func ledgerRuns() ([]ledger.Run, error) {
	l, err := ledger.Open(LabDir())
	if err != nil {
		return nil, err
	}
	defer l.Close()
	return l.Runs(context.Background(), "")
}

// infoNum is a number of r's verdict (NaN when r has none, or was the first of its lineage).
func infoNum(r ledger.Run, f func(ledger.VerdictInfo) float64) float64 {
	v, ok := r.Info()
	if !ok || v.HeadRun == "" {
		return math.NaN()
	}
	return f(v)
}

// points converts a training curve for kernel/verdict.
func points(c []train.Point) []verdict.Point {
	out := make([]verdict.Point, len(c))
	for i, p := range c {
		out[i] = verdict.Point{Step: p.Step, Loss: p.Loss}
	}
	return out
}

// runsFrame builds the Runs frame.
func runsFrame(runs []ledger.Run) dataframe.DataFrame {
	n := len(runs)
	str := func(name string, f func(r ledger.Run) string) series.Series {
		v := make([]string, n)
		for i, r := range runs {
			v[i] = f(r)
		}
		return series.New(v, series.String, name)
	}
	integer := func(name string, f func(i int, r ledger.Run) int) series.Series {
		v := make([]int, n)
		for i, r := range runs {
			v[i] = f(i, r)
		}
		return series.New(v, series.Int, name)
	}
	results := make([]train.Result, n)
	for i, r := range runs {
		json.Unmarshal([]byte(r.Result), &results[i]) // missing fields stay 0
	}
	metric := func(name string, f func(i int, r ledger.Run) float64) series.Series {
		v := make([]float64, n)
		for i, r := range runs {
			v[i] = math.NaN()
			if r.Status == ledger.StatusOK {
				v[i] = f(i, r)
			}
		}
		return series.New(v, series.Float, name)
	}
	cols := []series.Series{
		integer("seq", func(_ int, r ledger.Run) int { return int(r.Seq) }),
		str("id", func(r ledger.Run) string { return r.ID }),
		str("lineage", func(r ledger.Run) string { return r.Lineage }),
		str("status", func(r ledger.Run) string { return r.Status }),
		str("decision", func(r ledger.Run) string { return r.Decision }),
		str("mark", func(r ledger.Run) string { return r.Mark() }),
		str("description", func(r ledger.Run) string { return r.Description }),
		metric("val_loss", func(_ int, r ledger.Run) float64 { return r.ValLoss }),
		metric("val_bpb", func(_ int, r ledger.Run) float64 { return r.ValBPB }),
		metric("train_loss", func(_ int, r ledger.Run) float64 { return r.TrainLoss }),
		integer("steps", func(_ int, r ledger.Run) int { return r.Steps }),
		integer("tokens", func(_ int, r ledger.Run) int { return int(r.Tokens) }),
		metric("tokens_per_s", func(i int, _ ledger.Run) float64 { return results[i].TokensPerS }),
		metric("ms_per_step", func(_ int, r ledger.Run) float64 { return r.MsPerStep }),
		metric("wall_time_s", func(_ int, r ledger.Run) float64 { return r.WallTimeS }),
		metric("util_pct", func(_ int, r ledger.Run) float64 { return r.UtilPct }),
		integer("params", func(i int, _ ledger.Run) int { return results[i].Params }),
		str("parent", func(r ledger.Run) string { return r.Parent }),
		str("script", func(r ledger.Run) string { return r.Script }),
		str("started", func(r ledger.Run) string { return r.Started.Local().Format("2006-01-02 15:04:05") }),
		str("budget", func(r ledger.Run) string { return r.Budget }),
		str("test", func(r ledger.Run) string { v, _ := r.Info(); return v.Test }),
		metric("delta_vs_head", func(_ int, r ledger.Run) float64 {
			return infoNum(r, func(v ledger.VerdictInfo) float64 { return -v.Delta })
		}),
		metric("margin", func(_ int, r ledger.Run) float64 {
			return infoNum(r, func(v ledger.VerdictInfo) float64 { return v.Margin })
		}),
		metric("noise_sd", func(_ int, r ledger.Run) float64 {
			return infoNum(r, func(v ledger.VerdictInfo) float64 { return v.Noise.SD })
		}),
		str("verdict", func(r ledger.Run) string { return r.Verdict }),
		str("config_hash", func(r ledger.Run) string { return r.ConfigHash }),
	}
	cfgs := make([]config.Config, n)
	for i, r := range runs {
		json.Unmarshal([]byte(r.Config), &cfgs[i]) // an unreadable config leaves zeros
	}
	cols = append(cols, configColumns(cfgs)...)
	return dataframe.New(cols...)
}

// configField is one leaf of config.Config: its JSON path and how to read it.
type configField struct {
	name  string
	index []int
	kind  series.Type
}

var durationType = reflect.TypeOf(config.Duration(0))

// configFields lists config.Config's leaves in declaration order.
func configFields() []configField {
	var out []configField
	var walk func(t reflect.Type, prefix string, index []int)
	walk = func(t reflect.Type, prefix string, index []int) {
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "-" || !f.IsExported() {
				continue
			}
			if name == "" {
				name = f.Name
			}
			idx := append(append([]int(nil), index...), i)
			switch {
			case f.Type == durationType:
				out = append(out, configField{prefix + name + "_s", idx, series.Float})
			case f.Type.Kind() == reflect.Struct:
				walk(f.Type, prefix+name+".", idx)
			case f.Type.Kind() == reflect.Float32 || f.Type.Kind() == reflect.Float64:
				out = append(out, configField{prefix + name, idx, series.Float})
			case f.Type.Kind() >= reflect.Int && f.Type.Kind() <= reflect.Uint64:
				out = append(out, configField{prefix + name, idx, series.Int})
			case f.Type.Kind() == reflect.Bool:
				out = append(out, configField{prefix + name, idx, series.Bool})
			case f.Type.Kind() == reflect.String:
				out = append(out, configField{prefix + name, idx, series.String})
			}
		}
	}
	walk(reflect.TypeOf(config.Config{}), "", nil)
	return out
}

// configValue is field f of c as a float64, int, bool or string (durations in seconds).
func configValue(c config.Config, f configField) any {
	v := reflect.ValueOf(c).FieldByIndex(f.index)
	switch {
	case v.Type() == durationType:
		return time.Duration(v.Int()).Seconds()
	case f.kind == series.Float:
		return v.Float()
	case f.kind == series.Int:
		if v.CanInt() {
			return int(v.Int())
		}
		return int(v.Uint())
	case f.kind == series.Bool:
		return v.Bool()
	}
	return v.String()
}

func configColumns(cfgs []config.Config) []series.Series {
	var cols []series.Series
	for _, f := range configFields() {
		vals := make([]any, len(cfgs))
		for i, c := range cfgs {
			vals[i] = configValue(c, f)
		}
		var s series.Series
		switch f.kind {
		case series.Float:
			v := make([]float64, len(vals))
			for i := range vals {
				v[i] = vals[i].(float64)
			}
			s = series.New(v, series.Float, f.name)
		case series.Int:
			v := make([]int, len(vals))
			for i := range vals {
				v[i] = vals[i].(int)
			}
			s = series.New(v, series.Int, f.name)
		case series.Bool:
			v := make([]bool, len(vals))
			for i := range vals {
				v[i] = vals[i].(bool)
			}
			s = series.New(v, series.Bool, f.name)
		default:
			v := make([]string, len(vals))
			for i := range vals {
				v[i] = vals[i].(string)
			}
			s = series.New(v, series.String, f.name)
		}
		cols = append(cols, s)
	}
	return cols
}

// Get returns a ledger run by name. A name is a run id (or a unique part of one, such as its
// random suffix), or one of:
//
//	best[:lineage]      the lineage's head, its best kept run (lineage "main" by default)
//	baseline[:lineage]  the lineage's first ok run, which every later run is measured against
//	last[:lineage]      the lineage's most recent run ("last:*": the most recent of all)
func Get(name string) (ledger.Run, error) {
	l, err := ledger.Open(LabDir())
	if err != nil {
		return ledger.Run{}, err
	}
	defer l.Close()
	return resolve(l, name)
}

func resolve(l *ledger.Ledger, name string) (ledger.Run, error) {
	ctx := context.Background()
	what, lineage, _ := strings.Cut(name, ":")
	if lineage == "" {
		lineage = "main"
	}
	switch what {
	case "best":
		r, ok, err := l.Head(ctx, lineage)
		if err == nil && !ok {
			err = noData{fmt.Errorf("lineage %q has no kept run yet", lineage)}
		}
		return r, err
	case "baseline", "last":
		if lineage == "*" {
			lineage = ""
		}
		runs, err := l.Runs(ctx, lineage)
		if err != nil {
			return ledger.Run{}, err
		}
		if what == "last" && len(runs) > 0 {
			return runs[len(runs)-1], nil
		}
		for _, r := range runs {
			if r.Status == ledger.StatusOK {
				return r, nil
			}
		}
		return ledger.Run{}, noData{fmt.Errorf("%s: lineage %q has no ok run yet", name, lineage)}
	}
	if name == "" {
		return ledger.Run{}, noData{fmt.Errorf("no run named (\"\"): give an id, best, baseline or last")}
	}
	if r, err := l.Get(ctx, name); err == nil {
		return r, nil
	}
	runs, err := l.Runs(ctx, "")
	if err != nil {
		return ledger.Run{}, err
	}
	var hits []ledger.Run
	for _, r := range runs {
		if strings.Contains(r.ID, name) {
			hits = append(hits, r)
		}
	}
	switch len(hits) {
	case 1:
		return hits[0], nil
	case 0:
		return ledger.Run{}, noData{fmt.Errorf("no run %q in the ledger %s (nb.Show(nb.Runs(), \"id\") lists them; "+
			"best, baseline and last name runs too)", name, filepath.Join(LabDir(), ledger.File))}
	}
	ids := make([]string, len(hits))
	for i, r := range hits {
		ids[i] = r.ID
	}
	return ledger.Run{}, fmt.Errorf("run name %q is ambiguous: %s", name, strings.Join(ids, ", "))
}

// RunConfig is the config a run trained with.
func RunConfig(r ledger.Run) (config.Config, error) {
	var c config.Config
	if err := json.Unmarshal([]byte(r.Config), &c); err != nil {
		return c, fmt.Errorf("run %s: its config is not readable: %v", r.ID, err)
	}
	return c, nil
}

// RunDir is a run's folder in the lab.
func RunDir(id string) string { return filepath.Join(LabDir(), "runs", id) }

// Curve reads a run's loss curve (runs/<id>/curve.tsv: step loss lr time_s tokens).
func Curve(id string) ([]train.Point, error) {
	path := filepath.Join(RunDir(id), "curve.tsv")
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("loss curve of run %s: %w", id, err)
	}
	defer f.Close()
	return readCurve(f, path)
}

func readCurve(f *os.File, path string) ([]train.Point, error) {
	var pts []train.Point
	s := bufio.NewScanner(f)
	line := 0
	var col map[string]int
	for s.Scan() {
		line++
		fields := strings.Split(strings.TrimSpace(s.Text()), "\t")
		if line == 1 {
			col = map[string]int{}
			for i, h := range fields {
				col[h] = i
			}
			if _, ok := col["step"]; !ok {
				return nil, fmt.Errorf("%s: the header has no step column", path)
			}
			if _, ok := col["loss"]; !ok {
				return nil, fmt.Errorf("%s: the header has no loss column", path)
			}
			continue
		}
		get := func(name string) float64 {
			i, ok := col[name]
			if !ok || i >= len(fields) {
				return math.NaN()
			}
			v, err := strconv.ParseFloat(fields[i], 64)
			if err != nil {
				return math.NaN()
			}
			return v
		}
		p := train.Point{Step: int(get("step")), Loss: get("loss"), LR: get("lr"), TimeS: get("time_s")}
		if t := get("tokens"); !math.IsNaN(t) {
			p.Tokens = int64(t)
		}
		pts = append(pts, p)
	}
	return pts, s.Err()
}
