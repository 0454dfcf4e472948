//go:build ignore

package experiment

import "github.com/anelab/anelab/kernel/lab"

var kept [][]byte

// Experiment() asks for 64 × 1 GiB: far past the memory limit of the process evaluating it.
func Experiment() lab.Spec {
	for i := 0; i < 64; i++ {
		kept = append(kept, make([]byte, 1<<30))
	}
	return lab.Spec{Config: lab.Best()}
}
