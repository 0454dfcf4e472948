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
	need := c.MemoryNeed()
	for _, tc := range []struct {
		avail int64
		ok    bool
	}{{int64(need) + 1, true}, {int64(need) - 1, false}, {0, true}} {
		err := checkMemory(c, tc.avail)
		if (err == nil) != tc.ok || err != nil && !strings.Contains(err.Error(), "GiB to train") {
			t.Errorf("available %d for a need of %.0f: %v", tc.avail, need, err)
		}
	}
	if AvailableMemory() < 0 {
		t.Error("negative available memory")
	}
}
