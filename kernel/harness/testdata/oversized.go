//go:build ignore

package experiment

import "github.com/anelab/anelab/kernel/lab"

// A sweep whose first spec needs far more memory than any test machine has (about 800 GiB): that
// spec is refused up front as invalid, naming what it needs, and the second still runs.
func Sweep() []lab.Spec {
	big, good := lab.Best(), lab.Best()
	big.Model.Dim, big.Model.Layers, big.Model.Heads, big.Model.FFN = 16384, 32, 128, 65536
	return []lab.Spec{{Description: "too big", Config: big}, {Description: "fine", Config: good}}
}
