//go:build ignore

// The recorded research session's sweep (README): from the head of lineage "session" (the
// scaled-down baseline of scripts/session_baseline.go; run with `--lineage session`), the learning
// rate ×3 and ×10 — the default's 3e-4 is tuned for 5-minute runs, and a 2-second compute budget
// gets ~180 updates — and Muon for the matrices at its default rate. One run each; the sweep's
// ranking judges each against the head under the measured noise floor.
package experiment

import (
	"fmt"

	"github.com/anelab/anelab/kernel/lab"
)

func Sweep() []lab.Spec {
	var specs []lab.Spec
	for _, mult := range []float64{3, 10} {
		c := lab.Best()
		c.Optim.LR = mult * c.Optim.LR
		specs = append(specs, lab.Spec{Description: fmt.Sprintf("lr ×%g = %.3g", mult, c.Optim.LR), Config: c})
	}
	c := lab.Best()
	c.Optim.Name = "muon"
	specs = append(specs, lab.Spec{Description: "muon for the matrices (muon_lr 0.02), adamw at lr for the rest", Config: c})
	return specs
}
