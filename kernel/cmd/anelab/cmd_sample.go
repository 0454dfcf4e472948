package main

import (
	"errors"
	"flag"
	"fmt"
	"os"

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
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("usage: anelab sample [flags] CKPT")
	}
	text, err := train.Sample(fs.Arg(0), *prompt, sample.Options{Tokens: *n, Temperature: *temp, TopK: *topK, Seed: *seed})
	if err != nil {
		return err
	}
	fmt.Fprintln(os.Stdout, "--- sample ---")
	fmt.Fprintln(os.Stdout, text)
	return nil
}
