package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

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
		defer stopPreparing(*out)()
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
		defer stopPreparing(*out)()
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
		defer stopPreparing(*out)()
		return prep.DownloadTinyStories(*out, os.Stdout)
	}
	return fmt.Errorf("unknown data kind %q: want default, text or tinystories", kind)
}

// stopPreparing makes Ctrl-C or SIGTERM during a preparation of out remove the half-built dataset
// and exit (status 130): out keeps what it held, since preparation builds beside it and swaps in
// only at the end. The returned function ends the handling.
func stopPreparing(out string) func() {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		select {
		case sig := <-sigs:
			msg := fmt.Sprintf("\n%v: preparation stopped; %s is as it was", sig, out)
			if tmp := prep.RemovePartial(out); tmp != "" {
				msg += " (removed the half-built " + tmp + ")"
			}
			fmt.Fprintln(os.Stderr, msg)
			os.Exit(130)
		case <-done:
		}
	}()
	return func() {
		signal.Stop(sigs)
		close(done)
	}
}
