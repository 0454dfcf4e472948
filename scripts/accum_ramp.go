//go:build ignore

// Accumulation ramp, the way the original's "marathons" ramped ACCUM 2 → 4 → 8 on one model:
// every run of this script continues lineage "accum" from its head (its best kept checkpoint)
// with twice the head's gradient accumulation, up to 8 micro-steps per update. Run it several
// times in a row. Unlike the original, a run that does not improve is discarded and the next
// one continues from the same head, so the ramp never builds on a worse model.
package experiment

import (
	"fmt"

	"github.com/anelab/anelab/kernel/lab"
)

const maxAccum = 8

func Experiment() lab.Spec {
	c := lab.BestOf("accum") // lab.Baseline() while the lineage has no kept run
	accum := 2 * c.Optim.Accum
	if accum > maxAccum {
		accum = maxAccum
	}
	c.Optim.Accum = accum
	return lab.Spec{
		Description: fmt.Sprintf("accum ramp: continue with accum %d", accum),
		Config:      c,
		Lineage:     "accum",
		Continue:    true, // resume from the head's checkpoint (fresh while there is none)
	}
}
