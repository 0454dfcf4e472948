package data

import (
	"fmt"
	"math/rand/v2"
)

// checkSplit says whether a split of n tokens can give windows of seq inputs (seq+1 tokens with the
// shifted target).
func checkSplit(name string, n, seq int) error {
	if seq < 1 {
		return fmt.Errorf("sequence length %d must be ≥ 1", seq)
	}
	if n < seq+1 {
		return fmt.Errorf("%s split has %d tokens, but a window of seq %d needs at least %d (seq+1): "+
			"use a shorter model.seq or prepare more data", name, n, seq, seq+1)
	}
	return nil
}

// Window copies the window starting at start: inputs = tokens[start : start+seq],
// targets = tokens[start+1 : start+seq+1] (the next token at every position).
func Window(tokens []uint16, start, seq int, inputs, targets []uint16) {
	copy(inputs[:seq], tokens[start:start+seq])
	copy(targets[:seq], tokens[start+1:start+seq+1])
}

// SampleBatch fills inputs and targets (each batch·seq long, row b at [b·seq, (b+1)·seq)) with
// batch windows from uniformly random starts in [0, len(tokens)−seq−1]. Windows may cross
// document boundaries, as in the original.
func SampleBatch(tokens []uint16, seq, batch int, rng *rand.Rand, inputs, targets []uint16) error {
	if err := checkSplit("token", len(tokens), seq); err != nil {
		return err
	}
	if len(inputs) < batch*seq || len(targets) < batch*seq {
		return fmt.Errorf("inputs (%d) and targets (%d) must hold batch·seq = %d tokens", len(inputs), len(targets), batch*seq)
	}
	for b := 0; b < batch; b++ {
		start := rng.IntN(len(tokens) - seq)
		Window(tokens, start, seq, inputs[b*seq:], targets[b*seq:])
	}
	return nil
}

// Sampler draws training batches from one split with its own random stream.
type Sampler struct {
	tokens     []uint16
	seq, batch int
	rng        *rand.Rand
}

// Windows returns a sampler of batch windows of seq tokens from the train split, drawing positions
// from rng (seed it from the run, so every run sees its own windows).
func (d *Dataset) Windows(rng *rand.Rand, seq, batch int) (*Sampler, error) {
	if err := checkSplit("train", len(d.Train), seq); err != nil {
		return nil, err
	}
	if batch < 1 {
		return nil, fmt.Errorf("batch %d must be ≥ 1", batch)
	}
	return &Sampler{tokens: d.Train, seq: seq, batch: batch, rng: rng}, nil
}

// Next fills inputs and targets (batch·seq each) with the next batch.
func (s *Sampler) Next(inputs, targets []uint16) {
	if err := SampleBatch(s.tokens, s.seq, s.batch, s.rng, inputs, targets); err != nil {
		panic(err) // sizes were checked by Windows; only short buffers get here
	}
}

// ValWindows returns the starts of n validation windows of seq tokens, spread evenly over the
// whole split: start_i = round(i·(L−seq−1)/(n−1)), so the first starts at 0 and the last ends
// at the split's last token. Whenever L ≥ n·(seq+1) the windows (targets included) do not overlap.
// The list depends only on the split, seq and n: every run evaluates on the same tokens.
func ValWindows(tokens []uint16, seq, n int) ([]int, error) {
	if err := checkSplit("val", len(tokens), seq); err != nil {
		return nil, err
	}
	if n < 1 {
		return nil, fmt.Errorf("number of validation windows %d must be ≥ 1", n)
	}
	last := len(tokens) - seq - 1
	starts := make([]int, n)
	if n == 1 {
		return starts, nil
	}
	for i := range starts {
		starts[i] = int((int64(2*i)*int64(last) + int64(n-1)) / int64(2*(n-1))) // round(i·last/(n−1))
	}
	return starts, nil
}

// ValWindows is ValWindows on the dataset's val split.
func (d *Dataset) ValWindows(seq, n int) ([]int, error) { return ValWindows(d.Val, seq, n) }
