package cudab

import (
	"fmt"

	"github.com/anelab/anelab/anert/config"
)

// unsupportedExtra names the architecture options (anert/model) the cuda backend does not
// implement; Supported lists them in its error. It runs every option the CPU model has today
// (arch.go: act swiglu, relu2, gelu; qk_norm; untied_head; zero_init needs nothing here, the
// weights come from the host model's initialisation), so only an activation added to
// config.Activations without kernels here is refused, and an odd head dim; a new model option
// the backend lacks goes here too.
func unsupportedExtra(cfg config.Config) []string {
	var e []string
	switch a := cfg.Model.Activation(); a {
	case "swiglu", "relu2", "gelu":
	default:
		e = append(e, fmt.Sprintf("model.act = %q (the cuda backend has swiglu, relu2 and gelu)", a))
	}
	// The head split and merge (split_heads, merge_heads, qknorm_split) move pairs of values: an
	// odd head dim (allowed with NoPE) would lose each head's last value.
	if m := cfg.Model; m.Heads > 0 && m.HeadDim()%2 != 0 {
		e = append(e, fmt.Sprintf("an odd head dim (model.dim/model.heads = %d; the head split works on pairs)", m.HeadDim()))
	}
	// QK-norm's kernels give a head's pairs one thread each, in blocks of at most 256 threads.
	if m := cfg.Model; m.QKNorm && m.Heads > 0 && m.HeadDim() > 512 {
		e = append(e, fmt.Sprintf("model.qk_norm with head dim %d (the cuda backend's QK-norm takes up to 512)", m.HeadDim()))
	}
	return e
}
