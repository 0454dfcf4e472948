package sample

import (
	"math"
	"math/rand/v2"
	"testing"
)

func TestPick(t *testing.T) {
	inf := float32(math.Inf(-1))
	logits := []float32{0, 2, inf, 1}
	rng := rand.New(rand.NewPCG(1, 2))
	if got := Pick(logits, 0, 0, rng); got != 1 {
		t.Fatalf("greedy: got %d, want 1", got)
	}
	// Frequencies follow softmax(logits/T) over the finite ids; id 2 (−Inf) is never drawn.
	const n = 200000
	count := make([]int, 4)
	for i := 0; i < n; i++ {
		count[Pick(logits, 1, 0, rng)]++
	}
	z := 1 + math.Exp(2) + math.Exp(1)
	for i, want := range []float64{1 / z, math.Exp(2) / z, 0, math.Exp(1) / z} {
		if got := float64(count[i]) / n; math.Abs(got-want) > 0.01 {
			t.Errorf("id %d: frequency %.4f, want %.4f", i, got, want)
		}
	}
	// Top-1 is greedy whatever the temperature.
	for i := 0; i < 100; i++ {
		if got := Pick(logits, 5, 1, rng); got != 1 {
			t.Fatalf("top-1: got %d", got)
		}
	}
}
