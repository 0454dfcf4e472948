package train

import (
	"strings"
	"testing"

	"github.com/anelab/anelab/anert/config"
)

// The up-front refusal compares the config's analytic need with what is available; unknown
// (0) available memory refuses nothing.
func TestCheckMemory(t *testing.T) {
	c := config.Default()
	c.Backend, c.Train.Threads = "cpu", 1 // one goroutine: no split step
	need := c.MemoryNeed()
	for _, tc := range []struct {
		avail int64
		ok    bool
	}{{int64(need) + 1, true}, {int64(need) - 1, false}, {0, true}} {
		err := CheckMemory(c, tc.avail)
		if (err == nil) != tc.ok || err != nil && !strings.Contains(err.Error(), "GiB to train") {
			t.Errorf("available %d for a need of %.0f: %v", tc.avail, need, err)
		}
	}
	// On 2 goroutines the default batch of 4 is split in two: a replica's gradients count too.
	c.Train.Threads = 2
	split := need + float64(c.Model.Params())*4
	for _, tc := range []struct {
		avail int64
		ok    bool
	}{{int64(split) + 1, true}, {int64(split) - 1, false}} {
		err := CheckMemory(c, tc.avail)
		if (err == nil) != tc.ok || err != nil && !strings.Contains(err.Error(), "2 shares") {
			t.Errorf("2 threads, available %d for a need of %.0f: %v", tc.avail, split, err)
		}
	}
	if c.Backend = "ane"; CheckMemory(c, int64(need)+1) != nil {
		t.Error("the ane backend's check counted a CPU split step's replicas")
	}
	if AvailableMemory() < 0 {
		t.Error("negative available memory")
	}
}
