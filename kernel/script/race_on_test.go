//go:build race

package script

// raceEnabled: yaegi v0.16.1's ExecuteWithContext assigns its named results from its worker
// goroutine after it has returned on a timeout, a data race inside yaegi that -race reports; the
// tests of an endless script top level are skipped under -race.
const raceEnabled = true
