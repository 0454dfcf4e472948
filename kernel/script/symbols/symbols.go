// Package symbols holds the compiled symbols the script host exposes to yaegi: the experiment API
// (kernel/lab) and the config types (anert/config). The *.go files beside this one are generated;
// regenerate them with `go generate ./kernel/script/symbols` after changing either package.
package symbols

import "reflect"

//go:generate go tool yaegi extract github.com/anelab/anelab/kernel/lab github.com/anelab/anelab/anert/config

// Symbols maps "import/path/name" to the package's exported symbols, as interp.Use expects.
var Symbols = map[string]map[string]reflect.Value{}
