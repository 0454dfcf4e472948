package main

import (
	"errors"
	"flag"
	"fmt"
	"os"

	"github.com/anelab/anelab/data/prep"
)

func init() {
	register("data", "prepare token shards: default | text FILE… | tinystories", cmdData)
}

const dataUsage = "which data? 'anelab data default' (synthetic stories, offline), 'anelab data text FILE…' or 'anelab data tinystories' (download)"

func cmdData(args []string) error {
	if len(args) == 0 {
		return errors.New(dataUsage)
	}
	kind, args := args[0], args[1:]
	if kind == "-h" || kind == "--help" || kind == "help" {
		fmt.Fprintln(os.Stderr, "usage: anelab data default|text FILE…|tinystories [--out DIR] [flags]\n\n"+dataUsage+
			"\n\nRun 'anelab data KIND -h' for a kind's flags.")
		return flag.ErrHelp
	}
	fs := flag.NewFlagSet("data "+kind, flag.ContinueOnError)
	switch kind {
	case "default":
		out := fs.String("out", prep.DefaultDir, "output folder")
		vocab := fs.Int("vocab", 4096, "BPE vocabulary size")
		tokens := fs.Int("tokens", 20_000_000, "training tokens to generate")
		pos, err := parseArgs(fs, args)
		if err != nil {
			return err
		}
		if err := noArgs(fs.Name(), pos); err != nil {
			return err
		}
		if *tokens <= 0 {
			return fmt.Errorf("--tokens %d: must be positive", *tokens)
		}
		return prep.PrepareDefault(*out, *vocab, *tokens, os.Stdout)
	case "text":
		out := fs.String("out", prep.DefaultTextDir, "output folder")
		vocab := fs.Int("vocab", 4096, "BPE vocabulary size")
		valFrac := fs.Float64("val", 0.1, "fraction of documents for validation")
		files, err := parseArgs(fs, args)
		if err != nil {
			return err
		}
		if len(files) == 0 {
			return errors.New("give one or more text files: anelab data text FILE…")
		}
		if !(*valFrac > 0 && *valFrac < 1) {
			return fmt.Errorf("--val %v: must be a fraction in (0, 1)", *valFrac)
		}
		return prep.PrepareText(*out, files, *vocab, *valFrac, os.Stdout)
	case "tinystories":
		out := fs.String("out", prep.DefaultTinyStoriesDir, "output folder")
		pos, err := parseArgs(fs, args)
		if err != nil {
			return err
		}
		if err := noArgs(fs.Name(), pos); err != nil {
			return err
		}
		return prep.DownloadTinyStories(*out, os.Stdout)
	}
	return fmt.Errorf("unknown data kind %q: want default, text or tinystories", kind)
}
