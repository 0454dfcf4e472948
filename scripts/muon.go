//go:build ignore

// Optimizer switch: Muon for the weight matrices (the original autoresearch's optimizer: Nesterov
// momentum, orthogonalised by five Newton–Schulz iterations), AdamW for the embedding, the norms
// and an untied head. Muon's matrix learning rate is its own (muon_lr 0.02, the speedruns'); lr
// becomes the AdamW groups' rate, which wants about 3× Lion's.
package experiment

import "github.com/anelab/anelab/kernel/lab"

func Experiment() lab.Spec {
	c := lab.Best()
	c.Optim.Name = "muon"
	c.Optim.MuonLR = 0.02
	c.Optim.MuonMomentum = 0.95
	c.Optim.LR = 3 * c.Optim.LR
	c.Optim.Beta1, c.Optim.Beta2, c.Optim.Eps = 0.9, 0.95, 1e-8
	return lab.Spec{
		Description: "Muon for the matrices (muon_lr 0.02), AdamW for the rest (lr ×3, beta2 0.95)",
		Config:      c,
	}
}
