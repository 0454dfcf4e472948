//go:build ignore

// The lab's noise floor: the baseline, unchanged, trained with 5 seeds. Identical configs pool in
// the ledger, so these runs measure the seed-to-seed spread of val_bpb under the budget they ran
// with (`anelab results` prints it as "noise floor"), and every later verdict under that budget
// uses it: keep only when the gain beats 2 standard errors of it. Run it once per budget you
// work at, before comparing ideas.
package experiment

import "github.com/anelab/anelab/kernel/lab"

func Experiment() lab.Spec {
	return lab.Spec{Description: "noise floor: the baseline with 5 seeds", Config: lab.Baseline(), Repeats: 5}
}
