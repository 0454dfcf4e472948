package train

import (
	"fmt"

	"github.com/anelab/anelab/anert/config"
	"github.com/anelab/anelab/anert/model"
)

// newBackend picks the backend the config asks for. "auto" is the CPU backend until an ANE
// device opens (see the ane backend).
func newBackend(cfg config.Config) (model.Backend, error) {
	switch cfg.Backend {
	case "cpu", "auto":
		return model.NewCPU(), nil
	}
	return nil, fmt.Errorf("backend = %q: not available in this build; use --backend cpu", cfg.Backend)
}
