//go:build ignore

package experiment

import (
	"math"

	"github.com/anelab/anelab/kernel/lab"
)

// A sweep whose first spec has a NaN learning rate: that spec is refused as invalid, and the
// second still runs.
func Sweep() []lab.Spec {
	bad, good := lab.Best(), lab.Best()
	bad.Optim.LR = math.NaN()
	return []lab.Spec{{Description: "nan lr", Config: bad}, {Description: "fine", Config: good}}
}
