//go:build !linux

package par

// cpu is worker k's index: no portable way to ask which CPU a thread runs on.
func cpu(k int) int { return k }
