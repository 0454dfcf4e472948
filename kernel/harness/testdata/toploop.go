//go:build ignore

package experiment

import "github.com/anelab/anelab/kernel/lab"

func Experiment() lab.Spec {
	n := 0
	for {
		n++
	}
	return lab.Spec{Config: lab.Best()}
}
