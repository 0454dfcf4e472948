//go:build ignore

package experiment

import (
	"fmt"

	"github.com/anelab/anelab/kernel/lab"
)

// Experiment() says it started, then takes its time (until the script timeout or a Ctrl-C).
func Experiment() lab.Spec {
	fmt.Println("evaluating: started")
	n := 0
	for {
		n++
	}
}
