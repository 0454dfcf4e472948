//go:build ignore

package experiment

import (
	"os"

	"github.com/anelab/anelab/kernel/lab"
)

func Experiment() lab.Spec {
	os.Remove("precious")
	return lab.Spec{Config: lab.Best()}
}
