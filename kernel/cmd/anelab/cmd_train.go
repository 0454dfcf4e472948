package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/anelab/anelab/anert/train"
	"github.com/anelab/anelab/data"
)

func init() {
	register("train", "train a model on prepared data for a compute or wall-clock budget", cmdTrain)
}

func cmdTrain(args []string) error {
	fs := flag.NewFlagSet("train", flag.ContinueOnError)
	dataDir := fs.String("data", "data/out/default", "prepared data folder (see 'anelab data')")
	resume := fs.String("resume", "", "checkpoint to continue from (this run's lr and schedule apply)")
	outDir := fs.String("out", "runs/latest", "folder for model.ckpt, result.json, curve.tsv, config.json")
	cfg, err := parseConfig(fs, args)
	if err != nil {
		return err
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	if err := os.MkdirAll(*outDir, 0o755); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := train.Run(ctx, cfg, train.Options{DataDir: *dataDir, Resume: *resume,
		Checkpoint: filepath.Join(*outDir, "model.ckpt"), Out: os.Stdout})
	if err != nil {
		return err
	}
	if err := writeRunFiles(*outDir, cfg, res); err != nil {
		return err
	}
	unigram := 0.0 // only the manifest: re-opening the dataset would re-read and checksum every shard
	if m, err := data.ReadManifest(*dataDir); err == nil {
		unigram = m.UnigramBPB
	}
	train.WriteSummary(os.Stdout, res, unigram)
	if res.Status != train.StatusOK {
		return fmt.Errorf("run %s: %s", res.Status, res.Error)
	}
	return nil
}

// writeRunFiles leaves the config, the result and the loss curve beside the checkpoint.
func writeRunFiles(dir string, cfg any, res train.Result) error {
	for name, v := range map[string]any{"config.json": cfg, "result.json": res} {
		b, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, name), append(b, '\n'), 0o644); err != nil {
			return err
		}
	}
	f, err := os.Create(filepath.Join(dir, "curve.tsv"))
	if err != nil {
		return err
	}
	fmt.Fprintln(f, "step\tloss\tlr\ttime_s\ttokens")
	for _, p := range res.Curve {
		fmt.Fprintf(f, "%d\t%.6f\t%.6g\t%.3f\t%d\n", p.Step, p.Loss, p.LR, p.TimeS, p.Tokens)
	}
	return f.Close()
}
