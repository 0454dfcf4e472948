//go:build ignore

package experiment

import (
	"fmt"

	"github.com/anelab/anelab/kernel/lab"
)

// Three learning rates, each repeated 3 times: lr 1e-3 is FakeRunner's optimum.
func Sweep() []lab.Spec {
	var specs []lab.Spec
	for _, lr := range []float64{8e-4, 1e-3, 3e-3} {
		c := lab.Tiny()
		c.Optim.LR = lr
		specs = append(specs, lab.Spec{Description: fmt.Sprintf("lr %g", lr), Config: c, Repeats: 3})
	}
	return specs
}
