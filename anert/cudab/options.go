package cudab

import "github.com/anelab/anelab/anert/config"

// unsupportedExtra names the model options beyond the base model that the cuda backend does not
// implement yet (Supported lists them in its error).
func unsupportedExtra(cfg config.Config) []string { return nil }
