//go:build ignore

// Architecture: the speedrun MLP instead of SwiGLU on the current best config. modded-nanogpt
// replaced the gated MLP with a plain one, relu(x)², at 4×dim (FFNFromRatio rounds it to a
// multiple of 32), and added QK-norm, which bounds the attention logits. SwiGLU's 8/3×dim has the
// same parameter count as the plain 4×dim MLP, so the two differ in the activation, not in size.
package experiment

import "github.com/anelab/anelab/kernel/lab"

func Experiment() lab.Spec {
	c := lab.Best()
	c.Model.Act = "relu2"
	c.Model.FFN = c.Model.FFNFromRatio(4)
	c.Model.QKNorm = true
	return lab.Spec{
		Description: "relu² MLP at 4×dim + QK-norm",
		Config:      c,
	}
}
