//go:build ignore

package experiment

import (
	"fmt"

	"github.com/anelab/anelab/kernel/lab"
)

// constant is the LR hook "always v". Closures are built in a helper, not in the loop body:
// yaegi shares loop variables across iterations.
func constant(v float64) func(int, float64) float64 {
	return func(step int, scheduled float64) float64 { return v }
}

func Sweep() []lab.Spec {
	var specs []lab.Spec
	for _, lr := range []float64{2e-4, 1e-3, 2e-2} {
		c := lab.Best()
		c.Optim.LR = lr
		specs = append(specs, lab.Spec{Description: fmt.Sprintf("lr %g", lr), Config: c, Lineage: "sweep",
			LR: constant(lr)})
	}
	return specs
}
