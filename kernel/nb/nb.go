// Package nb is the notebook API: what a GoNB cell calls to train a config or run an experiment
// script with a live view, read the ledger as a gota DataFrame and show it as an HTML table,
// plot progress, loss curves and a hyperparameter against val_loss, diff two runs' configs and
// sample text from a checkpoint.
//
// Each cell is a separate process, so nothing lives in variables between cells: every function
// reads and writes the lab folder (its ledger and run folders). Inside a GoNB notebook the
// results are HTML tables and PNG charts (gonbui); anywhere else the same calls print text, so
// a notebook's code also runs as a plain Go program.
//
// Paths: the project root is found from the working directory upward (the folder whose go.mod
// is this module); the lab folder is <root>/lab and the data <root>/data/out/default, unless
// ANELAB_LAB or ANELAB_DATA say otherwise.
//
// Smoke mode (ANELAB_NB_SMOKE=1, set by the notebook tests): Train and RunScript shrink every
// model to a tiny one and every budget to a few seconds, and say so, so that the notebooks run
// end to end in CI in about a minute.
package nb

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// bg is the context of ledger reads.
var bg = context.Background()

// Module is this project's module path.
const Module = "github.com/anelab/anelab"

// Environment variables the package reads.
const (
	EnvLab   = "ANELAB_LAB"      // lab folder (default <root>/lab)
	EnvData  = "ANELAB_DATA"     // prepared data folder (default <root>/data/out/default)
	EnvSmoke = "ANELAB_NB_SMOKE" // "1": tiny models and short budgets (notebook tests)
)

var (
	rootOnce sync.Once
	root     string
	rootErr  error
)

// Root is the project root: the nearest folder at or above the working directory whose go.mod
// declares this module. It panics with a clear message outside the project.
func Root() string {
	rootOnce.Do(func() {
		wd, err := os.Getwd()
		if err != nil {
			rootErr = err
			return
		}
		root, rootErr = findRoot(wd)
	})
	if rootErr != nil {
		panic(rootErr)
	}
	return root
}

// findRoot walks up from dir to the folder whose go.mod says `module github.com/anelab/anelab`.
func findRoot(dir string) (string, error) {
	for d := dir; ; {
		if isModuleRoot(filepath.Join(d, "go.mod")) {
			return d, nil
		}
		up := filepath.Dir(d)
		if up == d {
			return "", fmt.Errorf("nb: no go.mod of module %s at or above %s: open the notebook from the project's notebooks/ folder", Module, dir)
		}
		d = up
	}
}

func isModuleRoot(gomod string) bool {
	f, err := os.Open(gomod)
	if err != nil {
		return false
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if fields := strings.Fields(s.Text()); len(fields) == 2 && fields[0] == "module" {
			return strings.Trim(fields[1], `"`) == Module
		}
	}
	return false
}

// fromRoot is the environment variable's value if set (relative paths are taken from the
// project root), else def under the project root.
func fromRoot(env, def string) string {
	p := os.Getenv(env)
	if p == "" {
		p = def
	}
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(Root(), p)
}

// LabDir is the lab folder: ledger.db, results.tsv and runs/<id>/.
func LabDir() string { return fromRoot(EnvLab, "lab") }

// DataDir is the prepared data folder training reads.
func DataDir() string { return fromRoot(EnvData, filepath.Join("data", "out", "default")) }

// Smoke reports whether smoke mode is on (see the package comment).
func Smoke() bool { return os.Getenv(EnvSmoke) == "1" }
