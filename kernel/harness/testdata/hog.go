//go:build ignore

package experiment

import "github.com/anelab/anelab/kernel/lab"

var kept [][]byte

// A hook that keeps 512 MiB more every step: past the run's memory limit within a few steps.
func Experiment() lab.Spec {
	return lab.Spec{Description: "memory hog", Config: lab.Best(),
		OnStep: func(e lab.Event) { kept = append(kept, make([]byte, 512<<20)) }}
}
