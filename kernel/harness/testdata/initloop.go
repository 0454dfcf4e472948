//go:build ignore

package experiment

import "github.com/anelab/anelab/kernel/lab"

var table = build()

func build() []int {
	var t []int
	for i := 0; i >= 0; i = (i + 1) % 10 {
		t = t[:0]
	}
	return t
}

func Experiment() lab.Spec { return lab.Spec{Config: lab.Best()} }
