//go:build ignore

package experiment

import "github.com/anelab/anelab/kernel/lab"

func deeper(n int) int { return deeper(n+1) + 1 }

// Unbounded recursion in Experiment(): a fatal stack overflow of the process evaluating it.
func Experiment() lab.Spec {
	deeper(0)
	return lab.Spec{Config: lab.Best()}
}
