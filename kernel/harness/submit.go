package harness

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/anelab/anelab/anert/config"
	"github.com/anelab/anelab/kernel/lab"
	"github.com/anelab/anelab/kernel/ledger"
	"github.com/anelab/anelab/kernel/script"
)

// Submit loads the script and returns one job per spec, run ids assigned. A script that fails
// to load or to return specs gives a single job carrying the Failure. With Options.Child the
// script is evaluated in a child process, so nothing it does can end this one: a child that dies
// gives that single job too, with the cause (crash, oom, timeout, interrupted).
func (h *Harness) Submit(ctx context.Context, path, message string) []Job {
	if len(h.opt.Child) > 0 {
		return h.submitInChild(ctx, path, message)
	}
	return h.submitHere(ctx, path, message)
}

// submitHere is Submit in this process: load, call Experiment()/Sweep(), one job per spec and
// repeat.
func (h *Harness) submitHere(ctx context.Context, path, message string) []Job {
	now := h.opt.Now()
	prog, err := script.Load(path, h.scriptOptions(ctx, h.opt.Out))
	var specs []lab.Spec
	if err == nil {
		specs, err = prog.Specs()
	}
	if err != nil {
		return []Job{failedSubmit(path, message, h.opt.Lineage, now, scriptFailure(err))}
	}
	var jobs []Job
	for i, s := range specs {
		if s.Lineage == "" {
			s.Lineage = h.opt.Lineage // an unnamed spec joins the harness's lineage
		}
		j := jobFromSpec(ledger.NewID(now), prog, s, i, len(specs), message, now)
		refuseUnserialisable(&j)
		jobs = append(jobs, repeatJobs(j, h.repeats(s), now)...)
	}
	return jobs
}

// failedSubmit is the one job that records a script that gave no specs.
func failedSubmit(path, message, lineage string, now time.Time, f *Failure) Job {
	desc := cleanText(message)
	if desc == "" {
		desc = filepath.Base(path)
	}
	j := Job{ID: ledger.NewID(now), Script: path, Description: desc, Lineage: lineage, Submitted: now.UTC(), Failure: f}
	if src, err := os.ReadFile(path); err == nil {
		j.Source, j.ScriptHash = string(src), script.Hash(src)
	}
	return j
}

// refuseUnserialisable marks a job whose config cannot travel as JSON (a NaN or ±Inf, which no
// valid config holds) as invalid up front, so it becomes a row like any other refused spec and
// the rest of a sweep goes on.
func refuseUnserialisable(j *Job) {
	if _, err := json.Marshal(j.Config); err == nil {
		return
	}
	msg := "spec.Config cannot be written as JSON"
	if err := j.Config.Validate(); err != nil {
		msg = err.Error()
	}
	j.Failure, j.Config = &Failure{Status: ledger.StatusInvalid, Msg: msg}, config.Config{}
}

// scriptOptions connect a script to this harness's lab: lab.Best() and lab.FromRun read its
// ledger, config.Load may read files of the lab (and of the script's own folder).
func (h *Harness) scriptOptions(ctx context.Context, out io.Writer) script.Options {
	return script.Options{
		Timeout: h.opt.ScriptTimeout,
		Lineage: h.opt.Lineage,
		Stdout:  out,
		Folders: []string{h.opt.Lab},
		BestOf: func(lineage string) (config.Config, bool) {
			r, ok, err := h.Ledger.Head(ctx, lineage)
			if err != nil || !ok {
				return config.Config{}, false
			}
			c, err := decodeConfig(r.Config)
			return c, err == nil
		},
		FromRun: func(id string) (config.Config, bool) {
			r, err := h.Ledger.Get(ctx, id)
			if err != nil {
				return config.Config{}, false
			}
			c, err := decodeConfig(r.Config)
			return c, err == nil
		},
	}
}

func decodeConfig(s string) (config.Config, error) {
	var c config.Config
	err := json.Unmarshal([]byte(s), &c)
	return c, err
}

// scriptFailure maps a script error to the ledger status it earns.
func scriptFailure(err error) *Failure {
	var se *script.Error
	if errors.As(err, &se) {
		switch se.Kind {
		case script.KindPanic:
			return &Failure{Status: ledger.StatusCrash, Msg: se.Error()}
		case script.KindTimeout:
			return &Failure{Status: ledger.StatusTimeout, Msg: se.Error()}
		}
		return &Failure{Status: ledger.StatusInvalid, Msg: se.Error()}
	}
	return &Failure{Status: ledger.StatusCrash, Msg: err.Error()}
}
