//go:build ignore

package experiment

import "github.com/anelab/anelab/kernel/lab"

func Experiment() lab.Spec {
	c := lab.Best()
	c.Model.Heads = 5 // does not divide dim 32
	c.Optim.Name = "sgd"
	return lab.Spec{Description: "two config errors", Config: c}
}
