//go:build ignore

package experiment

import "github.com/anelab/anelab/kernel/lab"

func Experiment() lab.Spec {
	return lab.Spec{Description: "LR hook never returns at step 2", Config: lab.Best(),
		LR: func(step int, lr float64) float64 {
			for step == 2 {
				lr = lr * 1
			}
			return lr
		}}
}
