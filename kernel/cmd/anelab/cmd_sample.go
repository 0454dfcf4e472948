package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/anelab/anelab/anert/sample"
	"github.com/anelab/anelab/anert/train"
)

func init() {
	register("sample", "print text generated from a checkpoint", cmdSample)
}

func cmdSample(args []string) error {
	fs := flag.NewFlagSet("sample", flag.ContinueOnError)
	n := fs.Int("tokens", 256, "tokens to generate")
	temp := fs.Float64("temp", 0.8, "temperature (0: greedy)")
	topK := fs.Int("top-k", 40, "sample from the k most likely tokens (0: all)")
	seed := fs.Uint64("seed", 1, "sampling seed")
	prompt := fs.String("prompt", "", "text to continue (default: the start of a story)")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return errors.New("usage: anelab sample CKPT [flags]")
	}
	if err := checkSampleFlags(*n, *temp, *topK); err != nil {
		return err
	}
	text, err := train.Sample(pos[0], *prompt, sample.Options{Tokens: *n, Temperature: *temp, TopK: *topK, Seed: *seed})
	if err != nil {
		return err
	}
	fmt.Fprintln(os.Stdout, "--- sample ---")
	fmt.Fprintln(os.Stdout, text)
	return nil
}

// checkSampleFlags refuses what would otherwise be ignored or sampled as garbage.
func checkSampleFlags(tokens int, temp float64, topK int) error {
	var bad []string
	if tokens <= 0 || tokens > 1<<20 {
		bad = append(bad, fmt.Sprintf("--tokens %d: must be in [1, %d]", tokens, 1<<20))
	}
	if !(temp >= 0 && temp <= 100) { // false for NaN
		bad = append(bad, fmt.Sprintf("--temp %v: must be a finite number in [0, 100] (0: greedy)", temp))
	}
	if topK < 0 {
		bad = append(bad, fmt.Sprintf("--top-k %d: must be ≥ 0 (0: all tokens)", topK))
	}
	if len(bad) > 0 {
		return errors.New(strings.Join(bad, "; "))
	}
	return nil
}
