//go:build !unix

package ledger

// processExists cannot tell on this system: a running run stays running.
func processExists(pid int) bool { return true }
