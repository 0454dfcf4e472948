//go:build ignore

package experiment

import "github.com/anelab/anelab/kernel/lab"

// A goroutine the hook starts panics: no recover can catch it, so it ends the run's process. The
// hook waits for it, so the panic comes before the run could finish.
func Experiment() lab.Spec {
	return lab.Spec{Description: "goroutine panic in a hook", Config: lab.Best(),
		OnStep: func(e lab.Event) {
			if e.Step == 3 {
				never := make(chan bool)
				go func() { panic("boom in a hook's goroutine") }()
				<-never
			}
		}}
}
