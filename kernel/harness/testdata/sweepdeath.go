//go:build ignore

package experiment

import "github.com/anelab/anelab/kernel/lab"

// Three specs; the second's hook starts a goroutine that panics and ends its run's process. The
// first and third train.
func Sweep() []lab.Spec {
	var specs []lab.Spec
	for i := 0; i < 3; i++ {
		c := lab.Best()
		c.Train.Seed = int64(i + 1)
		s := lab.Spec{Description: "spec " + string(rune('A'+i)), Config: c}
		if i == 1 {
			s.OnStep = func(e lab.Event) {
				if e.Step == 2 {
					never := make(chan bool)
					go func() { panic("boom in spec B") }()
					<-never
				}
			}
		}
		specs = append(specs, s)
	}
	return specs
}
