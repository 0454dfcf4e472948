package model

import (
	"strings"
	"testing"
)

// TestParseTune: ANELAB_CPU_TUNE's keys set their fields, and a malformed value names the bad
// part (New reports it).
func TestParseTune(t *testing.T) {
	base := cpuTune{deferMin: 8, deferBlocks: 4, shareTol: 1.1, wholePairs: true, chain: true, update: true, fillYield: true}
	got, err := parseTune(base, "defer=0, dblocks=2,sharetol=1.02,lone=2,lonen=3,whole=0,fillslack=1,chain=0,update=0,fillyield=0,nta=8,ntb=32,nna=64,nnb=4,tna=24,tnb=12,ablock=128,swip=1,home=1,homedim=512,keepp=1,fattnf=16,fattnft=128")
	want := cpuTune{deferMin: 0, deferBlocks: 2, shareTol: 1.02, loneBlocks: 2, loneNarrow: 3, wholePairs: false, fillSlack: true, ntA: 8, ntB: 32, nnA: 64, nnB: 4, tnA: 24, tnB: 12, attnBlock: 128, inPlaceSwiGLU: true, home: 1, homeDim: 512, keepP: true, fusedAttnFwd: 16, fusedFwdSeq: 128}
	if err != nil || got != want {
		t.Fatalf("got %+v, %v; want %+v", got, err, want)
	}
	for _, tc := range []struct{ in, msg string }{
		{"defer", "not key=value"},
		{"speed=3", `unknown key "speed"`},
		{"dblocks=x", `dblocks = "x"`},
		{"sharetol=0.5", "below 1"},
		{"lone=-1", "negative"},
		{"home=3", "0 (off), 1 (seats by CPU) or 2"},
	} {
		if _, err := parseTune(base, tc.in); err == nil || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%q: error %v, want one containing %q", tc.in, err, tc.msg)
		}
	}
}

// TestAttnBlockKnob: ablock replaces the CPU backend's attention block, and unset leaves it
// (the gradients at any block are checked against the reference in TestModelGradient's Block = 4).
func TestAttnBlockKnob(t *testing.T) {
	defer func(o cpuTune) { tune = o }(tune)
	c := NewCPU()
	for _, tc := range []struct{ knob, want int }{{0, 64}, {128, 128}} {
		tune.attnBlock = tc.knob
		if got := c.block(); got != tc.want {
			t.Errorf("ablock=%d: block %d, want %d", tc.knob, got, tc.want)
		}
	}
}

// TestWithTune: an alternative scheduling applies on top of the current one and restore puts that
// back; a bad one is an error naming its key and changes nothing.
func TestWithTune(t *testing.T) {
	defer func(o cpuTune) { tune = o }(tune)
	before := TuneString()
	restore, err := WithTune("dsets=4,ablock=32")
	if err != nil {
		t.Fatal(err)
	}
	if tune.deferSets != 4 || tune.attnBlock != 32 || !strings.Contains(TuneString(), "dsets=4") {
		t.Fatalf("with the alternative: %s", TuneString())
	}
	restore()
	if got := TuneString(); got != before {
		t.Fatalf("restored %s, want %s", got, before)
	}
	if _, err := WithTune("dsets=4,nosuch=1"); err == nil || !strings.Contains(err.Error(), `"nosuch"`) {
		t.Fatalf("bad key: error %v", err)
	}
	if got := TuneString(); got != before {
		t.Fatalf("a bad alternative changed the scheduling to %s", got)
	}
}
