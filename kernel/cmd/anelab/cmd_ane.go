package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/anelab/anelab/anert/device"
	_ "github.com/anelab/anelab/anert/device/ane" // registers the Neural Engine on darwin/arm64
	"github.com/anelab/anelab/anert/probe"
)

func init() {
	register("ane", "the Neural Engine: 'anelab ane probe' tries every kernel on this Mac and writes a shareable report", cmdANE)
}

func cmdANE(args []string) error { return runANE(os.Stdout, args) }

func runANE(w io.Writer, args []string) error {
	if len(args) == 0 || args[0] != "probe" {
		return errors.New("usage: anelab ane probe [--device auto|ane|emu] [--chip NAME] [--out DIR] [--evals N] [--force] [config flags]")
	}
	return runProbe(w, args[1:])
}

// runProbe compiles and evaluates every kernel variant from a tiny shape up to the configured one
// on the Neural Engine (or, where there is none, the emulator, and says so), and writes the report
// as Markdown and JSON.
func runProbe(w io.Writer, args []string) error {
	fs := flag.NewFlagSet("ane probe", flag.ContinueOnError)
	fs.SetOutput(w)
	chipName := fs.String("chip", "", "judge the kernels by this chip's rules (default: this Mac's, else the strictest)")
	out := fs.String("out", "ane-probe", "folder for ane-probe.md and ane-probe.json")
	evals := fs.Int("evals", 0, "timed evaluations per kernel (0: 20 on the ANE, 2 on the emulator)")
	force := fs.Bool("force", false, "also compile kernels that break the chip's error rules")
	cfg, err := parseConfig(fs, args)
	if err != nil {
		return err
	}
	ch, why, err := chipFlag(*chipName)
	if err != nil {
		return err
	}
	devName := "auto" // the Neural Engine where it opens, else the emulator (--device ane or emu to choose)
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "device" {
			devName = cfg.Device
		}
	})
	dev, err := device.Open(devName)
	if err != nil {
		return err
	}
	defer dev.Close()
	if _, ok := dev.(*device.Emu); ok {
		fmt.Fprintln(w, "ane probe: no Neural Engine here: running the same sequence on the fp16 emulator (timings are the CPU's, errors against the emulator are 0 by construction)")
	}
	r, err := probe.Run(probe.Options{Model: cfg.Model, Device: dev, Chip: ch, ChipWhy: why, Evals: *evals, Force: *force, Log: w})
	if err != nil {
		return err
	}
	md, js, err := r.Write(*out)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "\n%s\nreport: %s and %s — paste the Markdown into an issue, attach the JSON\n", r.Markdown(), md, js)
	if r.Failures > 0 {
		fmt.Fprintf(w, "%d kernel(s) or backend(s) failed or disagree (training falls back to the conservative variants where it can)\n", r.Failures)
	}
	return nil
}
