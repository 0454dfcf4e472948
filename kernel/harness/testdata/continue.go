//go:build ignore

package experiment

import "github.com/anelab/anelab/kernel/lab"

func Experiment() lab.Spec {
	c := lab.BestOf("long")
	if c.Model.Dim != 32 { // no kept run yet: start the lineage from the tiny config
		c = lab.Tiny()
		c.Optim.LR = 1e-3
	}
	return lab.Spec{Description: "continue the long lineage", Config: c, Lineage: "long", Continue: true}
}
