package script

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/anelab/anelab/anert/config"
)

// maxConfigFile bounds what config.Load reads for a script: a config is a few kilobytes.
const maxConfigFile = 1 << 20

// loadConfig is config.Load as scripts see it: it reads only regular files inside the script's
// own folder or Options.Folders (the lab), after resolving symbolic links, so a script cannot
// reach any other file through it. Its errors name the path and what is wrong but never echo the
// file's content (a JSON parser's message quotes the offending bytes).
func (p *Program) loadConfig(path string) (config.Config, error) {
	c := config.Default()
	fail := func(format string, args ...any) (config.Config, error) {
		return c, fmt.Errorf("config.Load(%q): "+format, append([]any{path}, args...)...)
	}
	real, err := resolve(path)
	if err != nil {
		return fail("no such file (paths are relative to the folder anelab runs in)")
	}
	allowed := p.readableFolders()
	if !inside(real, allowed) {
		return fail("scripts may read configs only inside %s", strings.Join(allowed, " or "))
	}
	f, err := os.Open(real)
	if err != nil {
		return fail("cannot open it (%v)", errors.Unwrap(err))
	}
	defer f.Close()
	if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() {
		return fail("not a regular file")
	}
	b, err := io.ReadAll(io.LimitReader(f, maxConfigFile+1))
	if err != nil {
		return fail("cannot read it (%v)", errors.Unwrap(err))
	}
	if len(b) > maxConfigFile {
		return fail("larger than %d bytes: not a config", maxConfigFile)
	}
	if err := config.DecodeStrict(b, &c); err != nil {
		return fail("not a config: %s (fields are listed in anert/config/config.go)", decodeProblem(err))
	}
	return c, nil
}

// decodeProblem says what is wrong with a config file without quoting its bytes.
func decodeProblem(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("invalid JSON at byte %d", se.Offset)
	case errors.As(err, &te):
		return fmt.Sprintf("field %s has the wrong type (%s)", te.Field, te.Value)
	case strings.HasPrefix(err.Error(), "json: unknown field"):
		return "a field that Config does not have"
	}
	return "want exactly one JSON object of config fields"
}

// readableFolders are the script's folder and Options.Folders, absolute with links resolved
// (those that do not exist are left out).
func (p *Program) readableFolders() []string {
	var out []string
	for _, d := range append([]string{filepath.Dir(p.Path)}, p.opt.Folders...) {
		if r, err := resolve(d); err == nil {
			out = append(out, r)
		}
	}
	return out
}

// resolve is path made absolute, with every symbolic link resolved.
func resolve(path string) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	return filepath.EvalSymlinks(abs)
}

// inside reports whether path is one of dirs or below one.
func inside(path string, dirs []string) bool {
	for _, d := range dirs {
		if rel, err := filepath.Rel(d, path); err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) && !filepath.IsAbs(rel) {
			return true
		}
	}
	return false
}
