//go:build ignore

// The queue's throughput benchmark (README "Queue and fleet"): six learning rates on a small
// model, each a fixed number of updates (no time budget, so every run does the same work however
// many run at once). Queue it and time a worker with one slot against one with N:
//
//	bin/anelab submit scripts/queue_bench.go --lab /tmp/qb1
//	time bin/anelab worker --slots 1 --threads-per-slot 1 --until-empty --lab /tmp/qb1
//	bin/anelab submit scripts/queue_bench.go --lab /tmp/qb2
//	time bin/anelab worker --slots 2 --threads-per-slot 1 --until-empty --lab /tmp/qb2
package experiment

import (
	"fmt"

	"github.com/anelab/anelab/kernel/lab"
)

func Sweep() []lab.Spec {
	var specs []lab.Spec
	for _, lr := range []float64{2e-4, 3e-4, 5e-4, 8e-4, 1.2e-3, 2e-3} {
		c := lab.Baseline()
		c.Model.Dim, c.Model.Layers, c.Model.Heads, c.Model.FFN, c.Model.Seq = 128, 4, 2, 384, 128
		c.Train.Budget, c.Train.Steps, c.Train.EvalWindows = 0, 60, 16
		c.Optim.LR = lr
		specs = append(specs, lab.Spec{Description: fmt.Sprintf("queue bench: lr %g", lr), Config: c, Lineage: "queue-bench"})
	}
	return specs
}
