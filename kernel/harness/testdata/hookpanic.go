//go:build ignore

package experiment

import "github.com/anelab/anelab/kernel/lab"

func check(step int) {
	if step == 3 {
		var table []float64
		_ = table[step] // index out of range at step 3
	}
}

func Experiment() lab.Spec {
	return lab.Spec{Description: "panics in OnStep", Config: lab.Best(),
		OnStep: func(e lab.Event) { check(e.Step) }}
}
