//go:build ignore

// The recorded research session's baseline (README, "A recorded research session"): the default
// recipe scaled down so a session of ~15 runs fits a shared 2-core machine — dim 64, 2 layers,
// 1 head of 64, SwiGLU at 8/3×dim, context 64, batch 8, a 2-second compute budget (about 180
// updates) — trained with 5 seeds to measure the noise floor at that budget. Run it with
// `--lineage session` so it heads its own lineage.
package experiment

import "github.com/anelab/anelab/kernel/lab"

// Small is the session's scaled-down default.
func Small() lab.Spec {
	c := lab.Baseline()
	c.Model.Dim, c.Model.Layers, c.Model.Heads, c.Model.Seq = 64, 2, 1, 64
	c.Model.FFN = c.Model.FFNFromRatio(8.0 / 3)
	c.Train.Batch = 8
	c.Train.BudgetKind, c.Train.Budget = "compute", lab.Seconds(2)
	return lab.Spec{Description: "session baseline: default recipe at dim 64, 2 layers, seq 64, 2 s compute", Config: c}
}

func Experiment() lab.Spec {
	s := Small()
	s.Repeats = 5
	return s
}
