package nb

import (
	"fmt"
	"strings"

	"github.com/anelab/anelab/anert/config"
	"github.com/anelab/anelab/kernel/ledger"
)

// FieldChange is one config field that differs between two configs.
type FieldChange struct {
	Field string // JSON path, e.g. "optim.lr"
	A, B  any    // float64, int, bool or string (durations in seconds)
}

// DiffConfigs lists the fields of b that differ from a, in config order.
func DiffConfigs(a, b config.Config) []FieldChange {
	var out []FieldChange
	for _, f := range configFields() {
		va, vb := configValue(a, f), configValue(b, f)
		if va != vb {
			out = append(out, FieldChange{f.name, va, vb})
		}
	}
	return out
}

// Diff shows what changed from run a to run b (names as Get takes them: ids, "baseline",
// "best", "last"…): the metrics side by side with the change, every config field that
// differs (numeric ones with the change in percent), then the comparison under noise: budgets,
// each config's pooled val_bpb, the noise floor, kernel/verdict's decision of b against a, and
// both runs' training loss at the same step.
//
//	nb.Diff("baseline", "best")
func Diff(a, b string) {
	report(diff(a, b))
}

func diff(a, b string) error {
	l, err := ledger.Open(LabDir())
	if err != nil {
		return err
	}
	defer l.Close()
	ra, err := resolve(l, a)
	if err != nil {
		return err
	}
	rb, err := resolve(l, b)
	if err != nil {
		return err
	}
	ca, err := RunConfig(ra)
	if err != nil {
		return err
	}
	cb, err := RunConfig(rb)
	if err != nil {
		return err
	}
	h, t := diffTables(ra, rb, a, b, DiffConfigs(ca, cb))
	vh, vt := comparison(l, ra, rb)
	out.HTML(h+vh, t+vt)
	out.Sync()
	return nil
}

// diffTables renders the comparison of runs ra (named a) and rb (named b).
func diffTables(ra, rb ledger.Run, a, b string, changes []FieldChange) (string, string) {
	label := func(name string, r ledger.Run) string {
		if name == r.ID {
			return r.ID
		}
		return name + " (" + r.ID + ")"
	}
	la, lb := label(a, ra), label(b, rb)
	var h, t strings.Builder
	th := `<th style="text-align:%s;border-bottom:1px solid #888;padding:2px 8px">%s</th>`
	td := `<td style="text-align:%s;padding:2px 8px">%s</td>`
	cells := func(cell string, cs []string) { // the first column left-aligned, the others right
		for i, c := range cs {
			al := "right"
			if i == 0 {
				al = "left"
			}
			fmt.Fprintf(&h, cell, al, esc(c))
		}
	}
	row := func(cs ...string) {
		h.WriteString("<tr>")
		cells(td, cs)
		h.WriteString("</tr>")
		fmt.Fprintf(&t, "  %-22s %-14s %-14s %s\n", cs[0], cs[1], cs[2], cs[3])
	}
	head := func(cols ...string) {
		h.WriteString(`<table style="border-collapse:collapse;font-size:90%;margin-bottom:8px"><thead><tr>`)
		cells(th, cols)
		h.WriteString("</tr></thead><tbody>")
	}

	fmt.Fprintf(&h, "<p><b>%s</b> → <b>%s</b></p>", esc(la), esc(lb))
	fmt.Fprintf(&t, "%s → %s\n", la, lb)
	head("metric", "a", "b", "change")
	type metric struct {
		name string
		a, b float64
	}
	for _, m := range []metric{{"val_loss", ra.ValLoss, rb.ValLoss}, {"val_bpb", ra.ValBPB, rb.ValBPB},
		{"train_loss", ra.TrainLoss, rb.TrainLoss}, {"steps", float64(ra.Steps), float64(rb.Steps)},
		{"ms_per_step", ra.MsPerStep, rb.MsPerStep}} {
		row(m.name, Num(m.a), Num(m.b), Change(m.a, m.b))
	}
	row("status", ra.Mark(), rb.Mark(), "")
	h.WriteString("</tbody></table>")

	if len(changes) == 0 {
		h.WriteString("<p>The configs are identical.</p>")
		t.WriteString("the configs are identical\n")
		return h.String(), t.String()
	}
	t.WriteString("config:\n")
	head("config field", "a", "b", "change")
	for _, c := range changes {
		row(c.Field, fieldString(c.A), fieldString(c.B), fieldChange(c.A, c.B))
	}
	h.WriteString("</tbody></table>")
	return h.String(), t.String()
}

func fieldString(v any) string {
	switch x := v.(type) {
	case float64:
		return Num(x)
	case int:
		return Num(float64(x))
	}
	return fmt.Sprint(v)
}

func fieldChange(a, b any) string {
	fa, oka := number(a)
	fb, okb := number(b)
	if oka && okb {
		return Change(fa, fb)
	}
	return ""
}

func number(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case int:
		return float64(x), true
	}
	return 0, false
}
