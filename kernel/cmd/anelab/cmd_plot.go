package main

import (
	"context"
	"flag"
	"fmt"
	"path/filepath"

	"gonum.org/v1/plot/vg"

	"github.com/anelab/anelab/kernel/ledger"
	"github.com/anelab/anelab/kernel/plots"
)

func init() {
	register("plot", "draw progress.png: val_bpb, running best with its noise band, kept/within-noise/discarded runs", cmdPlot)
}

func cmdPlot(args []string) error {
	fs := flag.NewFlagSet("plot", flag.ContinueOnError)
	lineage := fs.String("lineage", "", "only this lineage (default: all)")
	out := fs.String("o", "", "output PNG (default: <lab>/progress.png)")
	l, labDir, err := openLab(fs, args)
	if err != nil {
		return err
	}
	defer l.Close()
	if *out == "" {
		*out = filepath.Join(labDir, "progress.png")
	}
	runs, err := l.Runs(context.Background(), *lineage)
	if err != nil {
		return err
	}
	floors, err := l.NoiseFloors(context.Background())
	if err != nil {
		return err
	}
	png, err := plots.ProgressNoise(runs, plots.NoiseFor(runs, floors), 12*vg.Inch, 6*vg.Inch)
	if err != nil {
		return err
	}
	if err := ledger.WriteFileAtomic(*out, png); err != nil {
		return err
	}
	fmt.Printf("wrote %s (%d runs)\n", *out, len(runs))
	return nil
}
