//go:build !(linux && amd64)

package cuda

import (
	"fmt"
	"runtime"
)

// The CUDA backend is built for linux/amd64 only (the one GPU platform the project has); elsewhere
// every library fails to open, so Open returns ErrNoDriver and nothing calls ccall.
func ccall(fn uintptr, args ...uintptr) uintptr {
	panic("cuda: no CUDA on " + runtime.GOOS + "/" + runtime.GOARCH)
}

func dlopen(name string) (uintptr, error) {
	return 0, fmt.Errorf("the CUDA backend is built for linux/amd64 only, not %s/%s", runtime.GOOS, runtime.GOARCH)
}

func dlsym(h uintptr, name string) (uintptr, error) { return 0, fmt.Errorf("no symbol %s", name) }
