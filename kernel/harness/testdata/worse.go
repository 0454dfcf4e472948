//go:build ignore

package experiment

import "github.com/anelab/anelab/kernel/lab"

// Best config with a learning rate far from the fake runner's optimum (1e-3).
func Experiment() lab.Spec {
	c := lab.Best()
	c.Optim.LR = 1e-5
	return lab.Spec{Description: "lr 1e-5 (worse)", Config: c}
}
