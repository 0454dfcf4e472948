//go:build !linux

package par

// cpu is k (a worker's index, or −1 for a timeline): no portable way to ask which CPU a thread
// runs on.
func cpu(k int) int { return k }
