package main

import (
	"errors"
	"flag"
	"fmt"
	"os"

	"github.com/anelab/anelab/data"
)

func init() {
	register("data", "prepare token shards: default | text FILE… | tinystories", cmdData)
}

func cmdData(args []string) error {
	if len(args) == 0 {
		return errors.New("which data? 'anelab data default' (synthetic stories, offline), 'anelab data text FILE…' or 'anelab data tinystories' (download)")
	}
	kind, args := args[0], args[1:]
	fs := flag.NewFlagSet("data "+kind, flag.ContinueOnError)
	switch kind {
	case "default":
		out := fs.String("out", data.DefaultDir, "output folder")
		vocab := fs.Int("vocab", 4096, "BPE vocabulary size")
		tokens := fs.Int("tokens", 20_000_000, "training tokens to generate")
		if err := fs.Parse(args); err != nil {
			return err
		}
		return data.PrepareDefault(*out, *vocab, *tokens, os.Stdout)
	case "text":
		out := fs.String("out", data.DefaultTextDir, "output folder")
		vocab := fs.Int("vocab", 4096, "BPE vocabulary size")
		valFrac := fs.Float64("val", 0.1, "fraction of documents for validation")
		if err := fs.Parse(args); err != nil {
			return err
		}
		if fs.NArg() == 0 {
			return errors.New("give one or more text files: anelab data text FILE…")
		}
		return data.PrepareText(*out, fs.Args(), *vocab, *valFrac, os.Stdout)
	case "tinystories":
		out := fs.String("out", data.DefaultTinyStoriesDir, "output folder")
		if err := fs.Parse(args); err != nil {
			return err
		}
		return data.DownloadTinyStories(*out, os.Stdout)
	}
	return fmt.Errorf("unknown data kind %q: want default, text or tinystories", kind)
}
