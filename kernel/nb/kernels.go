package nb

import (
	"fmt"

	"github.com/anelab/anelab/anert/config"
	"github.com/anelab/anelab/anert/mil"
	milcheck "github.com/anelab/anelab/anert/mil/check"
)

// Named is a model config with a name, for the tables that compare several.
type Named struct {
	Name  string
	Model config.Model
}

// Constraints shows the ANE constraint checker's verdict (anert/mil/check) on each config: a
// summary line per config (ok, or how many errors and warnings), then every violation with its
// rule, where it is, what happens on the device, what to change and the source of the rule.
// An error means the run would be refused before any device time is spent.
func Constraints(cfgs ...Named) {
	type verdict struct {
		n  Named
		vs []milcheck.Violation
	}
	var all []verdict
	for _, c := range cfgs {
		all = append(all, verdict{c, milcheck.CheckConfig(c.Model)})
	}
	var sum [6][]string
	var det [7][]string
	for _, v := range all {
		m := v.n.Model
		nerr := len(milcheck.Errors(v.vs))
		nwarn := len(v.vs) - nerr
		say := "ok"
		switch {
		case nerr > 0:
			say = fmt.Sprintf("refused: %d error(s), %d warning(s)", nerr, nwarn)
		case nwarn > 0:
			say = fmt.Sprintf("ok, %d warning(s)", nwarn)
		}
		kv := m.KVHeads
		if kv == 0 {
			kv = m.Heads
		}
		sum[0] = append(sum[0], v.n.Name)
		sum[1] = append(sum[1], fmt.Sprint(m.Dim))
		sum[2] = append(sum[2], fmt.Sprintf("%d/%d", m.Heads, kv))
		sum[3] = append(sum[3], fmt.Sprint(m.FFN))
		sum[4] = append(sum[4], fmt.Sprint(m.Seq))
		sum[5] = append(sum[5], say)
		for _, x := range v.vs {
			where := "config"
			if x.Kernel != "" {
				where = x.Kernel
				if x.Line > 0 {
					where += fmt.Sprintf(":%d", x.Line)
				}
			}
			det[0] = append(det[0], v.n.Name)
			det[1] = append(det[1], x.Rule.Severity.String())
			det[2] = append(det[2], x.Rule.ID)
			det[3] = append(det[3], where)
			det[4] = append(det[4], x.Detail+" → "+x.Rule.Symptom)
			det[5] = append(det[5], x.Rule.Fix)
			det[6] = append(det[6], x.Rule.Source)
		}
	}
	h1, t1 := stringTable([]string{"config", "dim", "heads/kv", "ffn", "seq", "verdict"}, sum[:],
		[]bool{false, true, true, true, true, false})
	h, t := h1, t1
	if len(det[0]) > 0 {
		h2, t2 := stringTable([]string{"config", "severity", "rule", "where", "finding → symptom", "fix", "source"}, det[:],
			make([]bool, 7))
		h += "<p>Violations:</p>" + h2
		t += "\n\nviolations:\n" + t2
	}
	out.HTML(h, t)
	out.Sync()
}

// Kernels shows the eight MIL kernels generated for one layer of m: what each computes, its
// input and output surfaces and its matmul work.
func Kernels(m config.Model) {
	ks, err := mil.Kernels(mil.FromModel(m))
	check(err)
	var cols [5][]string
	for _, k := range ks {
		cols[0] = append(cols[0], k.Name)
		cols[1] = append(cols[1], k.Doc)
		cols[2] = append(cols[2], k.In.String())
		cols[3] = append(cols[3], k.Out.String())
		cols[4] = append(cols[4], Num(float64(k.FLOPs)/1e6))
	}
	h, t := stringTable([]string{"kernel", "computes", "input", "output", "MFLOP"}, cols[:],
		[]bool{false, false, false, false, true})
	out.HTML(h, t)
	out.Sync()
}
