// Package queuetest checks a ledger written by concurrent workers against the queue's semantics;
// only tests import it.
package queuetest

import (
	"fmt"
	"strings"

	"github.com/anelab/anelab/kernel/ledger"
)

// Replay replays runs (a ledger, in recording order) and returns every place it breaks the
// semantics: each recorded run was judged against the head its predecessors left (prev_head);
// with no noise estimate (single runs, no repeats) an ok run is kept exactly when its val_bpb is
// below that head's (or the lineage has none), within-noise when equal, else discarded; running,
// killed and failed runs never decide; only a set's deciding run moves the head.
func Replay(runs []ledger.Run) []string {
	var bad []string
	head := map[string]ledger.Run{}
	for _, r := range runs {
		h, has := head[r.Lineage]
		if r.Status == ledger.StatusRunning || r.Status == ledger.StatusKilled {
			if r.Decision != "" {
				bad = append(bad, fmt.Sprintf("%s (%s) has decision %q", r.ID, r.Status, r.Decision))
			}
			continue
		}
		if r.PrevHead != h.ID {
			bad = append(bad, fmt.Sprintf("%s: judged against %q, but the head its predecessors left is %q", r.ID, r.PrevHead, h.ID))
		}
		if r.Status != ledger.StatusOK {
			if r.Decision != "" {
				bad = append(bad, fmt.Sprintf("%s (%s) has decision %q", r.ID, r.Status, r.Decision))
			}
			continue
		}
		if r.RepeatOf == "" {
			want := ledger.Discard
			switch {
			case !has || r.Metric() < h.Metric():
				want = ledger.Keep
			case r.Metric() == h.Metric():
				want = ledger.WithinNoise
			}
			if r.Decision != want {
				bad = append(bad, fmt.Sprintf("%s: val_bpb %.4f against head %q (%.4f): %q, want %q", r.ID, r.Metric(), h.ID, h.Metric(), r.Decision, want))
			}
		}
		if r.Decision == ledger.Keep && !strings.HasPrefix(r.Verdict, "with ") {
			head[r.Lineage] = r
		}
	}
	return bad
}
