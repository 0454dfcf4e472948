package nb

import (
	"fmt"
	"strings"

	"github.com/anelab/anelab/kernel/ledger"
	"github.com/anelab/anelab/kernel/verdict"
)

// Noise shows the lab's noise floors: for each budget, the seed-to-seed σ of val_bpb pooled over
// every config the lab has run more than once (scripts/noise.go measures it), which every verdict
// under that budget uses.
func Noise() {
	report(noise())
}

func noise() error {
	l, err := ledger.Open(LabDir())
	if err != nil {
		return err
	}
	defer l.Close()
	fs, err := l.NoiseFloors(bg)
	if err != nil {
		return err
	}
	if len(fs) == 0 {
		Note("no noise floor measured yet: repeat a config (anelab run scripts/noise.go, or Spec.Repeats)")
		return nil
	}
	var h, t strings.Builder
	h.WriteString(`<table class="anelab" style="border-collapse:collapse;font-size:90%"><thead><tr>`)
	for _, c := range []string{"budget", "σ(val_bpb)", "runs", "configs", "dof", "keep margin, 1 run vs 1 run"} {
		fmt.Fprintf(&h, `<th style="text-align:left;border-bottom:1px solid #888;padding:2px 8px">%s</th>`, esc(c))
	}
	h.WriteString("</tr></thead><tbody>")
	for _, f := range fs {
		margin := ledger.Rule.K * f.SD * 1.4142135623730951 // K·σ·√(1/1+1/1)
		cs := []string{f.Budget, fmt.Sprintf("%.4f", f.SD), fmt.Sprint(f.Runs), fmt.Sprint(f.Groups), fmt.Sprint(f.DoF),
			fmt.Sprintf("%.4f", margin)}
		h.WriteString("<tr>")
		for _, c := range cs {
			fmt.Fprintf(&h, `<td style="text-align:left;padding:2px 8px">%s</td>`, esc(c))
		}
		h.WriteString("</tr>")
		fmt.Fprintf(&t, "%s: σ %.4f over %d runs of %d configs (dof %d), 1-vs-1 keep margin %.4f\n",
			f.Budget, f.SD, f.Runs, f.Groups, f.DoF, margin)
	}
	h.WriteString("</tbody></table>")
	out.HTML(h.String(), t.String())
	out.Sync()
	return nil
}

// comparison is the noise-aware part of Diff: both runs' budgets, their configs' pooled val_bpb,
// the noise floor, what kernel/verdict says of b against a, and the training loss of both at the
// same step.
func comparison(l *ledger.Ledger, ra, rb ledger.Run) (string, string) {
	pool := func(r ledger.Run) verdict.Sample {
		if r.ConfigHash != "" {
			if s, err := l.Pooled(bg, r.ConfigHash); err == nil && s.N > 0 {
				return s
			}
		}
		if !r.HasLoss() {
			return verdict.Sample{}
		}
		return verdict.Summarize([]float64{r.Metric()})
	}
	sa, sb := pool(ra), pool(rb)
	var noise verdict.Noise
	if f, ok, err := l.Noise(bg, rb.Budget); err == nil && ok {
		noise = f.Noise
	}
	var lines [][2]string
	add := func(k, v string) { lines = append(lines, [2]string{k, v}) }
	add("budget", fmt.Sprintf("a: %s, b: %s", orDash(ra.Budget), orDash(rb.Budget)))
	if ra.Budget != rb.Budget {
		add("warning", "different budgets: the runs are not comparable (verdicts compare only within one budget)")
	}
	add("pooled val_bpb", fmt.Sprintf("a: %s, b: %s (every ok run of the same config, seeds pooled)", sampleText(sa), sampleText(sb)))
	if noise.Known() {
		add("noise floor", fmt.Sprintf("σ %.4f (dof %d) under %s", noise.SD, noise.DoF, rb.Budget))
	} else {
		add("noise floor", "not measured under "+orDash(rb.Budget)+" (anelab run scripts/noise.go)")
	}
	if sa.N > 0 && sb.N > 0 {
		v := verdict.Decide(sb, sa, noise, ledger.Rule)
		add("b against a", v.String())
	}
	if rb.Verdict != "" {
		add("b's recorded verdict", rb.Verdict)
	}
	ca, erra := Curve(ra.ID)
	cb, errb := Curve(rb.ID)
	if erra == nil && errb == nil {
		step, la, lb, n := verdict.SameStep(points(ca), points(cb), 10)
		if n > 0 {
			add("same step", fmt.Sprintf("train loss at step %d (mean of %d updates): a %.4f, b %.4f (Δ %+.4f)", step, n, la, lb, lb-la))
		}
	}
	var h, t strings.Builder
	h.WriteString(`<table style="border-collapse:collapse;font-size:90%;margin-bottom:8px"><tbody>`)
	for _, kv := range lines {
		fmt.Fprintf(&h, `<tr><td style="text-align:left;padding:2px 8px"><b>%s</b></td><td style="text-align:left;padding:2px 8px">%s</td></tr>`,
			esc(kv[0]), esc(kv[1]))
		fmt.Fprintf(&t, "  %-22s %s\n", kv[0], kv[1])
	}
	h.WriteString("</tbody></table>")
	return h.String(), t.String()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func sampleText(s verdict.Sample) string {
	switch {
	case s.N == 0:
		return "none"
	case s.N == 1:
		return fmt.Sprintf("%.4f (n=1)", s.Mean)
	}
	return fmt.Sprintf("%.4f ± %.4f (n=%d)", s.Mean, s.SD, s.N)
}
