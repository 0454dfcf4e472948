//go:build !(linux || darwin)

package blas

// addressSpaceLimit: no address-space limit to read here.
func addressSpaceLimit() (uint64, bool) { return 0, false }
