//go:build ignore

// A sweep: the current best config at three learning rates (×0.5, ×1.5, ×2.5). Each spec is a
// separate fresh run competing in lineage "main"; the best of them, if it beats the head, moves it.
package experiment

import (
	"fmt"

	"github.com/anelab/anelab/kernel/lab"
)

func Sweep() []lab.Spec {
	var specs []lab.Spec
	for _, mult := range []float64{0.5, 1.5, 2.5} {
		c := lab.Best()
		c.Optim.LR = mult * c.Optim.LR
		specs = append(specs, lab.Spec{
			Description: fmt.Sprintf("lr sweep: lr ×%g = %.3g", mult, c.Optim.LR),
			Config:      c,
		})
	}
	return specs
}
