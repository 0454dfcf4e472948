//go:build cgo && linux && !onednn

package blas

/*
char *openblas_get_corename(void);
char *openblas_get_config(void);
*/
import "C"

import (
	"fmt"
	"os"
	"strings"
	"syscall"
)

// libCore is the name of the kernel set OpenBLAS chose (or was told to use with OPENBLAS_CORETYPE).
func libCore() string { return C.GoString(C.openblas_get_corename()) }

// Config is OpenBLAS's build description (version, DYNAMIC_ARCH, thread limit, core).
func Config() string { return C.GoString(C.openblas_get_config()) }

// init makes sure OpenBLAS runs kernels that fit the CPU. A DYNAMIC_ARCH OpenBLAS picks its core
// from the CPU's family and model when the library is loaded, and falls back to generic kernels
// on a model it does not know (Debian's 0.3.21 runs Prescott's SSE3 kernels on Emerald Rapids,
// family 6 model 207: 5–10× slower). The choice can only be overridden by OPENBLAS_CORETYPE,
// read when the library loads, before any Go code runs; so when the core is generic and the CPU
// has AVX2, this process re-executes itself with OPENBLAS_CORETYPE set (same arguments and
// environment otherwise). ANELAB_BLAS_CORE=keep turns this off; a user's own OPENBLAS_CORETYPE is
// respected unless ANELAB_BLAS_CORE=auto asks to correct it too.
func init() {
	mode := os.Getenv("ANELAB_BLAS_CORE")
	if mode == "keep" || os.Getenv(reexecEnv) != "" {
		return
	}
	if _, set := os.LookupEnv("OPENBLAS_CORETYPE"); set && mode != "auto" {
		return
	}
	core := libCore()
	want := wantCore(core, cpuSIMD())
	if want == "" {
		return
	}
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "OPENBLAS_CORETYPE=") && !strings.HasPrefix(kv, reexecEnv+"=") {
			env = append(env, kv)
		}
	}
	env = append(env, "OPENBLAS_CORETYPE="+want, reexecEnv+"="+core)
	err := syscall.Exec("/proc/self/exe", os.Args, env)
	// Exec returns only on failure: carry on with the slow kernels, and say so.
	fmt.Fprintf(os.Stderr, "anelab: OpenBLAS runs its generic %s kernels on this %s CPU, and re-executing with "+
		"OPENBLAS_CORETYPE=%s failed (%v): set OPENBLAS_CORETYPE=%s yourself\n", core, features(), want, err, want)
}
