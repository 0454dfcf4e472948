//go:build ignore

package experiment

import "github.com/anelab/anelab/kernel/lab"

// Best config with a learning rate nearer the fake runner's optimum.
func Experiment() lab.Spec {
	c := lab.Best()
	c.Optim.LR = 8e-4
	return lab.Spec{Description: "lr 8e-4 (better)", Config: c}
}
