//go:build ignore

package experiment

import (
	"fmt"

	"github.com/anelab/anelab/kernel/lab"
)

// Six learning rates on the tiny config, one run each: the queue's tests drain this sweep with
// two workers. FakeRunner's val_loss is lowest at lr 1e-3.
func Sweep() []lab.Spec {
	var specs []lab.Spec
	for _, lr := range []float64{3e-4, 5e-4, 8e-4, 1e-3, 2e-3, 5e-3} {
		c := lab.Tiny()
		c.Optim.LR = lr
		specs = append(specs, lab.Spec{Description: fmt.Sprintf("lr %g", lr), Config: c, Lineage: "q"})
	}
	return specs
}
