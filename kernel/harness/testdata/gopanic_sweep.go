//go:build ignore

package experiment

import "github.com/anelab/anelab/kernel/lab"

// A goroutine started by Sweep() panics: it ends the process evaluating the script.
func Sweep() []lab.Spec {
	never := make(chan bool)
	go func() { panic("boom in Sweep's goroutine") }()
	<-never
	return []lab.Spec{{Config: lab.Best()}, {Config: lab.Best()}}
}
