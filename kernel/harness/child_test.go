package harness

import (
	"math"
	"strings"
	"testing"

	"github.com/anelab/anelab/anert/train"
	"github.com/anelab/anelab/kernel/ledger"
)

// ChildFailure: every way a supervised run's process can end, and the status it earns.
func TestChildFailure(t *testing.T) {
	ok := &ChildReply{Result: train.Result{Status: train.StatusOK, ValLoss: 2.5}}
	invalid := &ChildReply{Failure: &Failure{Status: ledger.StatusInvalid, Msg: "bad config"}}
	hook := &ChildReply{Failure: &Failure{Status: ledger.StatusCrash, Msg: "panic in the OnStep hook"}}
	cases := []struct {
		name   string
		end    ChildEnd
		status string // "" = no failure
		want   string
	}{
		{"finished", ChildEnd{Reply: ok}, "", ""},
		{"reported failure", ChildEnd{Reply: hook, ExitCode: 0}, ledger.StatusCrash, "OnStep"},
		{"timed out", ChildEnd{TimedOut: true, Limit: "the 1m0s timeout", Signal: "killed"}, ledger.StatusTimeout, "within the 1m0s timeout"},
		{"interrupted without reply", ChildEnd{Interrupted: true, ExitCode: 1}, StatusInterrupted, "interrupted"},
		{"interrupted, child says stopped", ChildEnd{Interrupted: true, Reply: &ChildReply{Failure: &Failure{Status: StatusInterrupted}}}, StatusInterrupted, "interrupted"},
		{"interrupted after finishing", ChildEnd{Interrupted: true, Reply: ok}, "", ""},
		{"interrupted but invalid anyway", ChildEnd{Interrupted: true, Reply: invalid}, ledger.StatusInvalid, "bad config"},
		{"go out of memory", ChildEnd{ExitCode: 2, MemLimit: 3 << 30, Tail: "fatal error: runtime: out of memory\n\ngoroutine 1"}, StatusOOM, "memory limit of 3072 MiB"},
		{"cgo out of memory", ChildEnd{ExitCode: 2, MemLimit: 1 << 30, Tail: "mmap: cannot allocate memory"}, StatusOOM, "out of memory"},
		{"stack overflow", ChildEnd{ExitCode: 2, Tail: "runtime: goroutine stack exceeds 67108864-byte limit\nfatal error: stack overflow"}, ledger.StatusCrash, "stack overflow"},
		{"goroutine panic", ChildEnd{ExitCode: 2, Tail: "panic: boom\n\ngoroutine 7 [running]:"}, ledger.StatusCrash, "panic: boom"},
		{"signal", ChildEnd{ExitCode: -1, Signal: "killed", Tail: "step 3"}, ledger.StatusCrash, "killed by killed"},
		{"silent exit", ChildEnd{ExitCode: 3}, ledger.StatusCrash, "exited with status 3 without a result"},
	}
	for _, tc := range cases {
		f := ChildFailure(tc.end)
		switch {
		case tc.status == "" && f != nil:
			t.Errorf("%s: failure %v, want none", tc.name, f)
		case tc.status != "" && f == nil:
			t.Errorf("%s: no failure, want %s", tc.name, tc.status)
		case f != nil && (f.Status != tc.status || !strings.Contains(f.Msg, tc.want)):
			t.Errorf("%s: %s %q, want %s mentioning %q", tc.name, f.Status, f.Msg, tc.status, tc.want)
		}
	}
}

// runStatus: the status a run's row gets from its failure and the trainer's result.
func TestRunStatus(t *testing.T) {
	cases := []struct {
		name   string
		fail   *Failure
		res    train.Result
		status string
		want   string
	}{
		{"ok", nil, train.Result{Status: train.StatusOK, ValLoss: 2}, ledger.StatusOK, ""},
		{"failure wins", &Failure{Status: StatusOOM, Msg: "oom"}, train.Result{Status: train.StatusOK, ValLoss: 2}, StatusOOM, "oom"},
		{"nan val loss", nil, train.Result{Status: train.StatusOK, ValLoss: math.NaN()}, ledger.StatusDiverged, "non-finite"},
		{"zero val loss", nil, train.Result{Status: train.StatusOK}, ledger.StatusDiverged, "zero"},
		{"diverged", nil, train.Result{Status: train.StatusDiverged, Error: "loss NaN at step 4"}, ledger.StatusDiverged, "step 4"},
		{"unknown status", nil, train.Result{Status: "weird", Error: "?"}, ledger.StatusCrash, `"weird"`},
	}
	for _, tc := range cases {
		s, msg := runStatus(tc.fail, tc.res)
		if s != tc.status || !strings.Contains(msg, tc.want) {
			t.Errorf("%s: %s %q, want %s mentioning %q", tc.name, s, msg, tc.status, tc.want)
		}
	}
}
