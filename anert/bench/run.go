package bench

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
)

// RunOptions say what Run measures and where it writes.
type RunOptions struct {
	Configs []string // spec names; nil: all of Specs()
	Specs   []Spec   // measured instead of Configs when set (in this process: Self must be empty)
	Options
	// Self is the command that runs this program's child mode: Self + ["--child", name, flags…]
	// must call Child. Empty: measure in this process (peak RSS then covers all configs so far).
	Self []string
	// Benchstat is the file the benchstat lines go to ("" for none).
	Benchstat string
	// Torch runs the PyTorch reference (TorchScript, given the thread count) right after anelab
	// on each config, between two sgemm bursts, and prints the tokens/s ratios.
	Torch       bool
	TorchScript string
	// Rounds is how many times each config is measured, in turn (0: 1, or 2 with Torch, so that a
	// moment of contention from other processes weighs less on the ratio).
	Rounds int
}

// Measured is one config's measurements: anelab's, one Result per round, and PyTorch's.
type Measured struct {
	Name  string
	Runs  []Result
	Torch []TorchRun
}

// TorchRun is one run of the PyTorch reference on one config, with the per-goroutine sgemm rate
// measured (in this process) right before and right after it.
type TorchRun struct {
	TorchResult
	Sgemm [2]Burst
}

// Run measures every config and prints the report to w (and the benchstat lines to
// o.Benchstat).
func Run(w io.Writer, o RunOptions) error {
	specs := o.Specs
	if specs == nil {
		names := o.Configs
		if len(names) == 0 {
			for _, s := range Specs() {
				names = append(names, s.Name)
			}
		}
		for _, name := range names {
			spec, err := SpecByName(name)
			if err != nil {
				return err
			}
			specs = append(specs, spec)
		}
	} else if len(o.Self) > 0 {
		return fmt.Errorf("bench: RunOptions.Specs are measured in this process: leave Self empty")
	}
	if err := errors.Join(o.Check(), nonNegative(flagValue{"rounds", int64(o.Rounds)})); err != nil {
		return err
	}
	for name := range o.Batch {
		if !slices.ContainsFunc(specs, func(s Spec) bool { return s.Name == name }) {
			return fmt.Errorf("bench: --batch names %q, not a config measured here (%s)", name, specNames(specs))
		}
	}
	if len(o.Batch) > 0 && o.Torch {
		return fmt.Errorf("bench: --batch with --torch: the PyTorch reference runs each config at its own batch; measure other batches without --torch")
	}
	if o.Threads <= 0 {
		o.Threads = runtime.GOMAXPROCS(0)
	}
	rounds := o.Rounds
	if rounds <= 0 {
		rounds = 1
		if o.Torch {
			rounds = 2
		}
	}
	var bu *burster
	if o.Torch {
		bu = newBurster(o.peakN(), o.Threads)
	}
	ms := make([]Measured, len(specs))
	for round := range rounds {
		for i, spec := range specs {
			ms[i].Name = spec.Name
			fmt.Fprintf(os.Stderr, "bench: measuring %s (%d threads, round %d of %d)…\n", spec.Name, o.Threads, round+1, rounds)
			var r Result
			var err error
			if len(o.Self) == 0 {
				r, err = Measure(spec, o.Options)
			} else {
				r, err = runChild(o.Self, spec.Name, o.Options)
			}
			if err != nil {
				return fmt.Errorf("bench %s: %w", spec.Name, err)
			}
			ms[i].Runs = append(ms[i].Runs, r)
			if !o.Torch {
				continue
			}
			fmt.Fprintf(os.Stderr, "bench: running the PyTorch reference on %s (%s %d)…\n", spec.Name, o.TorchScript, o.Threads)
			tr := TorchRun{}
			tr.Sgemm[0] = bu.parallel(o.burstDur())
			res, err := RunTorch(o.TorchScript, o.Threads, []string{spec.Name})
			if err != nil {
				return err
			}
			tr.Sgemm[1] = bu.parallel(o.burstDur())
			tr.TorchResult = res[spec.Name]
			ms[i].Torch = append(ms[i].Torch, tr)
		}
	}
	if o.Alt != "" { // each config's two schedulings as rows of their own, then paired
		whole := ms
		ms = nil
		for _, m := range whole {
			a, b := Measured{Name: m.Name, Torch: m.Torch}, Measured{Name: m.Name + "+alt"}
			for _, r := range m.Runs {
				a.Runs, b.Runs = append(a.Runs, r.Variant(false)), append(b.Runs, r.Variant(true))
			}
			ms = append(ms, a, b)
		}
		WriteReport(w, ms)
		WriteAB(w, whole)
	} else {
		WriteReport(w, ms)
	}
	var loops bytes.Buffer
	for _, m := range ms {
		for _, r := range m.Runs {
			WriteLoopProfile(&loops, r)
		}
	}
	w.Write(loops.Bytes())
	if o.Benchstat != "" {
		var b bytes.Buffer
		WriteBenchstat(&b, ms)
		if dir := filepath.Dir(o.Benchstat); dir != "." {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return fmt.Errorf("bench: the folder for the benchstat lines: %w", err)
			}
		}
		if err := os.WriteFile(o.Benchstat, b.Bytes(), 0o644); err != nil {
			return fmt.Errorf("bench: writing the benchstat lines: %w", err)
		}
		fmt.Fprintf(w, "\nbenchstat lines written to %s (compare runs with: benchstat old.txt %s)\n", o.Benchstat, o.Benchstat)
		if loops.Len() > 0 {
			f := LoopsFile(o.Benchstat)
			if err := os.WriteFile(f, loops.Bytes(), 0o644); err != nil {
				return fmt.Errorf("bench: writing the loop profile: %w", err)
			}
			fmt.Fprintf(w, "loop profile written to %s\n", f)
		}
	}
	return nil
}

// Child measures one config and writes its Result as JSON to w: the child process's job.
func Child(w io.Writer, name string, o Options) error {
	spec, err := SpecByName(name)
	if err != nil {
		return err
	}
	r, err := Measure(spec, o)
	if err != nil {
		return err
	}
	return json.NewEncoder(w).Encode(r)
}

// LoopsFile is where Run writes the loop profiles (Options.ProfileLoops) beside the benchstat
// lines in benchstat: bench.txt → bench.loops.txt.
func LoopsFile(benchstat string) string {
	return strings.TrimSuffix(benchstat, filepath.Ext(benchstat)) + ".loops.txt"
}

// ChildArgs are the flags that pass o to a child.
func (o Options) ChildArgs() []string {
	a := o.childArgs()
	if o.ProfileLoops {
		a = append(a, "--profile-loops")
	}
	if o.Trace != "" {
		a = append(a, "--trace", o.Trace)
	}
	return a
}

func (o Options) childArgs() []string {
	a := []string{"--threads", strconv.Itoa(o.Threads), "--warmup", strconv.Itoa(o.Warmup),
		"--steps", strconv.Itoa(o.Steps), "--group", strconv.Itoa(o.Group), "--peak-dur", o.PeakDur.String(), "--peak-n", strconv.Itoa(o.PeakN)}
	if o.Alt != "" {
		a = append(a, "--alt", o.Alt)
	}
	if len(o.Batch) > 0 {
		a = append(a, "--batch", FormatBatch(o.Batch))
	}
	return a
}

// ParseBatch parses anebench's --batch, "config=sequences,…" (e.g. default=8,original=2), naming
// the bad entry.
func ParseBatch(s string) (map[string]int, error) {
	m := map[string]int{}
	for _, kv := range strings.Split(s, ",") {
		if kv = strings.TrimSpace(kv); kv == "" {
			continue
		}
		k, v, ok := strings.Cut(kv, "=")
		n, err := strconv.Atoi(v)
		if !ok || k == "" || err != nil || n <= 0 {
			return nil, fmt.Errorf("--batch %q: want config=sequences, a positive number, e.g. default=8", kv)
		}
		m[k] = n
	}
	return m, nil
}

// FormatBatch is ParseBatch's inverse (configs in order).
func FormatBatch(m map[string]int) string {
	var b []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		b = append(b, k+"="+strconv.Itoa(m[k]))
	}
	return strings.Join(b, ",")
}

func runChild(self []string, name string, o Options) (Result, error) {
	args := append(append(append([]string(nil), self[1:]...), "--child", name), o.ChildArgs()...)
	cmd := exec.Command(self[0], args...)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return Result{}, fmt.Errorf("child %s %s: %w", self[0], strings.Join(args, " "), err)
	}
	var r Result
	if err := json.Unmarshal(out, &r); err != nil {
		return Result{}, fmt.Errorf("child %s: bad output %q: %w", name, out, err)
	}
	return r, nil
}

// specNames are the specs' names, comma-separated.
func specNames(specs []Spec) string {
	var n []string
	for _, s := range specs {
		n = append(n, s.Name)
	}
	return strings.Join(n, ", ")
}
