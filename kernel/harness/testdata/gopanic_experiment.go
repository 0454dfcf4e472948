//go:build ignore

package experiment

import "github.com/anelab/anelab/kernel/lab"

// A goroutine started by Experiment() panics: it ends the process evaluating the script.
func Experiment() lab.Spec {
	never := make(chan bool)
	go func() { panic("boom in Experiment's goroutine") }()
	<-never
	return lab.Spec{Config: lab.Best()}
}
