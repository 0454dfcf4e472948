//go:build ignore

package experiment

import "github.com/anelab/anelab/kernel/lab"

// A goroutine the hook starts panics: no recover can catch it, so it ends the run's process.
func Experiment() lab.Spec {
	return lab.Spec{Description: "goroutine panic", Config: lab.Best(),
		OnStep: func(e lab.Event) {
			if e.Step == 3 {
				go func() { panic("boom in a script goroutine") }()
			}
		}}
}
