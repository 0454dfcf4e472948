//go:build ignore

// The baseline: the default config (llama2.c stories15M-sized, Lion, cosine schedule) exactly as
// it is. Run it first in a fresh lab; every later experiment in lineage "main" competes with it.
package experiment

import "github.com/anelab/anelab/kernel/lab"

func Experiment() lab.Spec {
	return lab.Spec{
		Description: "baseline: default config",
		Config:      lab.Baseline(),
	}
}
