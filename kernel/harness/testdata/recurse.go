//go:build ignore

package experiment

import "github.com/anelab/anelab/kernel/lab"

func down(n int) int { return down(n+1) + 1 }

// Unbounded recursion in a hook: a fatal stack overflow of the run's process.
func Experiment() lab.Spec {
	return lab.Spec{Description: "stack overflow", Config: lab.Best(),
		OnStep: func(e lab.Event) {
			if e.Step == 2 {
				down(0)
			}
		}}
}
