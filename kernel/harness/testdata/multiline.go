//go:build ignore

package experiment

import "github.com/anelab/anelab/kernel/lab"

// A description with a newline, a tab and a terminal escape.
func Experiment() lab.Spec {
	return lab.Spec{Description: "first line\nsecond\tpart\x1b[2J", Config: lab.Best()}
}
