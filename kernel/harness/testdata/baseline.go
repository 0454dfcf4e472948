//go:build ignore

package experiment

import "github.com/anelab/anelab/kernel/lab"

// The tiny config at lr 3e-4: the reference every other test script is compared with (the fake
// runner's best lr is 1e-3).
func Experiment() lab.Spec {
	c := lab.Tiny()
	c.Optim.LR = 3e-4
	return lab.Spec{Description: "tiny baseline", Config: c}
}
