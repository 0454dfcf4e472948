//go:build ignore

// Optimizer switch: AdamW instead of Lion on the current best config. Lion's sign update makes
// every step the size of the learning rate, so AdamW wants a larger peak learning rate (×3
// here) and a shorter second-moment memory (β₂ 0.95), as is usual for small language models.
package experiment

import "github.com/anelab/anelab/kernel/lab"

func Experiment() lab.Spec {
	c := lab.Best()
	c.Optim.Name = "adamw"
	c.Optim.LR = 3 * c.Optim.LR
	c.Optim.Beta1 = 0.9
	c.Optim.Beta2 = 0.95
	c.Optim.Eps = 1e-8
	return lab.Spec{
		Description: "AdamW instead of Lion (lr ×3, beta2 0.95)",
		Config:      c,
	}
}
