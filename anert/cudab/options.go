package cudab

import (
	"fmt"

	"github.com/anelab/anelab/anert/config"
)

// unsupportedExtra names the architecture options (anert/model) the cuda backend does not
// implement yet; Supported lists them in its error. zero_init needs nothing here: the weights
// come from the host model's initialisation.
func unsupportedExtra(cfg config.Config) []string {
	var e []string
	m := cfg.Model
	if a := m.Activation(); a != "swiglu" {
		e = append(e, fmt.Sprintf("model.act = %q (the cuda backend has swiglu)", a))
	}
	if m.QKNorm {
		e = append(e, "model.qk_norm = true")
	}
	if m.UntiedHead {
		e = append(e, "model.untied_head = true")
	}
	return e
}
