//go:build ignore

package experiment

import "github.com/anelab/anelab/kernel/lab"

func Experiment() lab.Spec {
	return lab.Spec{Description: "lr 10 through the hook", Config: lab.Best(),
		LR: func(step int, lr float64) float64 { return 10 }}
}
