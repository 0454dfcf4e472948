package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/anelab/anelab/anert/cudab"
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
	allowData := fs.Bool("allow-data-change", false, "let --resume continue on data or a tokenizer other than the checkpoint's")
	outDir := fs.String("out", "runs/latest", "folder for model.ckpt, result.json, curve.tsv, config.json")
	gemm := fs.String("gemm-precision", "", "cuda backend: bf16 (bf16 GEMM operands) or fast16bf (fp32 tensors rounded to bf16 on load, the earlier mode); default $"+cudab.GEMMEnv+", else bf16")
	attention := fs.String("attention", "", "cuda backend: flash (fused kernels) or gemm (batched GEMMs + softmax); default $"+cudab.AttentionEnv+", else "+string(cudab.DefaultAttention))
	cfg, err := parseConfig(fs, args)
	if err != nil {
		return err
	}
	if *attention != "" {
		if _, err := cudab.ParseAttention(*attention); err != nil {
			return err
		}
	}
	if *gemm != "" {
		if _, err := cudab.ParseGEMMPrecision(*gemm); err != nil {
			return err
		}
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	if err := os.MkdirAll(*outDir, 0o755); err != nil {
		return err
	}
	ckptPath := filepath.Join(*outDir, "model.ckpt")
	res, err := train.Run(context.Background(), cfg, train.Options{DataDir: *dataDir, Resume: *resume,
		AllowDataChange: *allowData, Attention: *attention, GEMMPrecision: *gemm, Checkpoint: ckptPath, Out: os.Stdout, Stop: interrupts()})
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
	if res.Status == train.StatusInterrupted {
		if res.Checkpoint == "" {
			return exitCode{130, errors.New("interrupted before the first update: nothing to save")}
		}
		fmt.Printf("\ninterrupted: checkpoint, curve and result saved in %s; continue with\n  %s\n",
			*outDir, resumeLine(os.Args[2:], ckptPath))
		return exitCode{130, fmt.Errorf("run %s: %s", res.Status, res.Error)}
	}
	if res.Status != train.StatusOK {
		return fmt.Errorf("run %s: %s", res.Status, res.Error)
	}
	return nil
}

// interrupts returns a channel closed at the first SIGINT or SIGTERM: the run stops after the
// update in progress and saves what it has. A second signal exits at once (status 130), saving
// nothing more: the way out when saving takes too long or the process is stuck.
func interrupts() <-chan struct{} {
	stop := make(chan struct{})
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		sig := <-sigs
		fmt.Fprintf(os.Stderr, "\n%v: stopping after this update and saving the checkpoint, curve and result "+
			"(interrupt again to quit at once without saving)\n", sig)
		close(stop)
		sig = <-sigs
		fmt.Fprintf(os.Stderr, "\n%v again: quitting without saving\n", sig)
		os.Exit(130)
	}()
	return stop
}

// resumeLine is the command that continues an interrupted run: the same arguments, with --resume
// pointing at its checkpoint (replacing an earlier --resume).
func resumeLine(args []string, ckpt string) string {
	line := []string{"anelab", "train", "--resume", shellQuote(ckpt)}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--resume" || a == "-resume" {
			i++ // and its value
			continue
		}
		if strings.HasPrefix(a, "--resume=") || strings.HasPrefix(a, "-resume=") {
			continue
		}
		line = append(line, shellQuote(a))
	}
	return strings.Join(line, " ")
}

// shellQuote quotes s for a POSIX shell when it holds anything but plain characters.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=:,+@%") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
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
