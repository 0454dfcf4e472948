// Package sample generates text from a trained model: temperature and top-k sampling over the
// model's next-token distribution.
package sample

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sort"

	"github.com/anelab/anelab/anert/model"
)

// Options control generation. Temperature 0 is greedy decoding.
type Options struct {
	Tokens      int     // how many tokens to generate
	Temperature float64 // softmax temperature (0: argmax)
	TopK        int     // keep the k most likely tokens (0: all)
	Stop        int     // stop after generating this id (-1: never), e.g. the next story's BOS
	Seed        uint64
}

// Generate continues prompt by up to o.Tokens tokens and returns only the new tokens.
func Generate(m *model.Model, prompt []uint16, o Options) ([]uint16, error) {
	if len(prompt) == 0 {
		return nil, fmt.Errorf("sample: empty prompt")
	}
	rng := rand.New(rand.NewPCG(o.Seed, 0x5eed))
	ctx := append([]uint16(nil), prompt...)
	var out []uint16
	for i := 0; i < o.Tokens; i++ {
		logits, err := m.Logits(ctx)
		if err != nil {
			return out, err
		}
		id := Pick(logits, o.Temperature, o.TopK, rng)
		if id == o.Stop {
			break
		}
		out = append(out, uint16(id))
		ctx = append(ctx, uint16(id))
	}
	return out, nil
}

// Pick draws an id from softmax(logits/temperature) restricted to the top k logits.
// Temperature ≤ 0 returns the argmax. −Inf logits (inactive ids) are never drawn.
func Pick(logits []float32, temperature float64, k int, rng *rand.Rand) int {
	best := 0
	for i, l := range logits {
		if l > logits[best] {
			best = i
		}
	}
	if temperature <= 0 {
		return best
	}
	idx := make([]int, 0, len(logits))
	for i, l := range logits {
		if !math.IsInf(float64(l), -1) {
			idx = append(idx, i)
		}
	}
	if k > 0 && k < len(idx) {
		sort.Slice(idx, func(a, b int) bool { return logits[idx[a]] > logits[idx[b]] })
		idx = idx[:k]
	}
	p := make([]float64, len(idx))
	var z float64
	for j, i := range idx {
		p[j] = math.Exp((float64(logits[i]) - float64(logits[best])) / temperature)
		z += p[j]
	}
	u := rng.Float64() * z
	for j := range p {
		u -= p[j]
		if u <= 0 {
			return idx[j]
		}
	}
	return idx[len(idx)-1]
}
