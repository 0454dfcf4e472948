package prep

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/anelab/anelab/data"
)

// Atomic preparation. A dataset folder D is never written in place: the new dataset is built in
// a hidden sibling folder .D.tmp-PID and swapped in by rename once it is complete, so D holds
// either the old dataset or the new one whatever happens to the preparing process (kill -9, a
// full disk, Ctrl-C). A killed preparer leaves its .D.tmp-PID behind; the next preparation of D
// removes the leftovers of preparers that are no longer running.
//
// Swapping replaces the whole folder, so a D that holds anything besides a dataset's own files is
// refused rather than have those files vanish with the old dataset.

// build prepares the dataset folder dir: fill writes the complete dataset into the empty folder
// tmp it is given; then tmp replaces dir. On an error from fill nothing of dir changes.
func build(dir string, log io.Writer, fill func(tmp string) error) error {
	dir, err := resolveOut(dir)
	if err != nil {
		return err
	}
	parent, base := filepath.Dir(dir), filepath.Base(dir)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return err
	}
	cleanLeftovers(parent, base, log)
	if err := checkReplaceable(dir); err != nil {
		return err
	}
	tmp := filepath.Join(parent, tmpName(base, os.Getpid()))
	if err := os.RemoveAll(tmp); err != nil {
		return err
	}
	if err := os.Mkdir(tmp, 0o755); err != nil {
		return err
	}
	if err := fill(tmp); err != nil {
		os.RemoveAll(tmp)
		return err
	}
	if err := swapIn(tmp, dir); err != nil {
		os.RemoveAll(tmp)
		return fmt.Errorf("moving the new dataset into %s: %w", dir, err)
	}
	return nil
}

// resolveOut cleans dir and follows it when it is a symbolic link (the link's target is what gets
// replaced, not the link).
func resolveOut(dir string) (string, error) {
	if dir == "" {
		return "", errors.New("no output folder given (--out)")
	}
	dir = filepath.Clean(dir)
	if fi, err := os.Lstat(dir); err == nil && fi.Mode()&fs.ModeSymlink != 0 {
		real, err := filepath.EvalSymlinks(dir)
		if err != nil {
			return "", fmt.Errorf("--out %s: %w", dir, err)
		}
		dir = real
	}
	if base := filepath.Base(dir); base == "." || base == ".." || base == string(filepath.Separator) {
		return "", fmt.Errorf("--out %s: name a dataset folder of its own (e.g. data/out/mine)", dir)
	}
	return dir, nil
}

func tmpName(base string, pid int) string { return "." + base + ".tmp-" + strconv.Itoa(pid) }
func oldName(base string, pid int) string { return "." + base + ".old-" + strconv.Itoa(pid) }

// datasetFile says whether name can be part of a prepared dataset folder (or a leftover of
// writing one: the *.tmp and *.part files that shard, manifest and download writes go through).
func datasetFile(name string) bool {
	switch name {
	case data.ManifestFile, data.TrainFile, data.ValFile, data.BPEFile, data.Llama2TokFile, ".DS_Store":
		return true
	}
	return strings.HasSuffix(name, ".tmp") || strings.HasSuffix(name, ".part")
}

// checkReplaceable refuses a dir that is not a folder, or that holds files a dataset does not.
func checkReplaceable(dir string) error {
	fi, err := os.Stat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("--out %s is a file, not a folder: choose a folder for the dataset", dir)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("--out %s: %w", dir, err)
	}
	var foreign []string
	for _, e := range entries {
		if !e.Type().IsRegular() || !datasetFile(e.Name()) {
			foreign = append(foreign, e.Name())
		}
	}
	if len(foreign) > 0 {
		if len(foreign) > 5 {
			foreign = append(foreign[:5], fmt.Sprintf("and %d more", len(foreign)-5))
		}
		return fmt.Errorf("--out %s holds %s, which a prepared dataset does not: preparing replaces the whole folder, "+
			"so give --out an empty or new folder (or move those files away)", dir, strings.Join(foreign, ", "))
	}
	return nil
}

// swapIn makes tmp the folder dir: a plain rename when dir does not exist, else an exchange of
// the two folders followed by removing the old dataset.
func swapIn(tmp, dir string) error {
	if _, err := os.Lstat(dir); errors.Is(err, fs.ErrNotExist) {
		return os.Rename(tmp, dir)
	}
	if err := exchange(tmp, dir); err == nil {
		return os.RemoveAll(tmp) // tmp now holds the old dataset
	}
	// No atomic exchange here (another OS, or a file system without it): move the old folder aside
	// first. A preparer killed between the two renames leaves dir missing and the old dataset in
	// .D.old-PID, which cleanLeftovers puts back.
	old := filepath.Join(filepath.Dir(dir), oldName(filepath.Base(dir), os.Getpid()))
	if err := os.RemoveAll(old); err != nil {
		return err
	}
	if err := os.Rename(dir, old); err != nil {
		return err
	}
	if err := os.Rename(tmp, dir); err != nil {
		if rerr := os.Rename(old, dir); rerr != nil {
			return fmt.Errorf("%w; and putting the old dataset back failed (%v): it is in %s", err, rerr, old)
		}
		return err
	}
	return os.RemoveAll(old)
}

// cleanLeftovers removes what preparers of parent/base that are no longer running left behind:
// their half-built .base.tmp-PID folders, and the old dataset a swap had moved aside (put back
// when base is missing, removed otherwise). Failures only cost disk space: they are reported, not
// returned.
func cleanLeftovers(parent, base string, log io.Writer) {
	log = orDiscard(log)
	entries, err := os.ReadDir(parent)
	if err != nil {
		return
	}
	for _, e := range entries {
		name := e.Name()
		kind, pid, ok := leftover(name, base)
		if !ok || (pid != os.Getpid() && running(pid)) {
			continue
		}
		path := filepath.Join(parent, name)
		if kind == "old" {
			if _, err := os.Lstat(filepath.Join(parent, base)); errors.Is(err, fs.ErrNotExist) {
				if err := os.Rename(path, filepath.Join(parent, base)); err == nil {
					fmt.Fprintf(log, "put back the dataset %s that an interrupted preparation (pid %d) had moved aside\n", base, pid)
					continue
				}
			}
		}
		if err := os.RemoveAll(path); err != nil {
			fmt.Fprintf(log, "could not remove %s, left by an interrupted preparation (pid %d): %v\n", path, pid, err)
		} else {
			fmt.Fprintf(log, "removed %s, left by an interrupted preparation (pid %d)\n", path, pid)
		}
	}
}

// leftover parses ".base.tmp-PID" and ".base.old-PID".
func leftover(name, base string) (kind string, pid int, ok bool) {
	for _, k := range []string{"tmp", "old"} {
		prefix := "." + base + "." + k + "-"
		if rest, found := strings.CutPrefix(name, prefix); found {
			if n, err := strconv.Atoi(rest); err == nil && n > 0 {
				return k, n, true
			}
		}
	}
	return "", 0, false
}

// running says whether a process with this id exists (signal 0 checks without sending anything;
// EPERM means it exists but belongs to someone else).
func running(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// RemovePartial removes the half-built folder this process is preparing for dir, if any: for a
// command that is stopping on Ctrl-C, so that nothing is left for the next preparation to clean.
// dir itself is not touched. It returns the folder it removed ("" if none).
func RemovePartial(dir string) string {
	dir, err := resolveOut(dir)
	if err != nil {
		return ""
	}
	tmp := filepath.Join(filepath.Dir(dir), tmpName(filepath.Base(dir), os.Getpid()))
	if _, err := os.Stat(tmp); err != nil {
		return ""
	}
	if os.RemoveAll(tmp) != nil {
		return ""
	}
	return tmp
}
