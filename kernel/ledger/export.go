package ledger

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// TSVFile is the export's name inside the lab folder.
const TSVFile = "results.tsv"

// TSVHeader is the export's header: the original harness's five columns first (the commit
// column holds the run id, the util column our util_pct), then ours.
var TSVHeader = []string{"commit", "val_loss", "ane_util_pct", "status", "description",
	"val_bpb", "train_loss", "steps", "tokens", "ms_per_step", "wall_time_s", "lineage", "parent",
	"prev_best", "script", "script_hash", "started", "finished", "error", "verdict", "config_hash", "budget"}

// Mark is the results.tsv status of a run: its decision (keep/discard) for an ok run, else its
// status (crash, invalid, timeout, diverged, running, killed).
func (r Run) Mark() string {
	if r.Status == StatusOK && r.Decision != "" {
		return r.Decision
	}
	return r.Status
}

// TSVRow is r as results.tsv fields. Losses of runs that produced none are empty (NULL in the
// ledger), never 0, so no reader can take a crash for a best.
func (r Run) TSVRow() []string {
	f6 := func(v float64) string { return strconv.FormatFloat(v, 'f', 6, 64) }
	l6 := func(v float64) string {
		if !r.HasLoss() {
			return ""
		}
		return f6(v)
	}
	prev := ""
	if r.PrevHead != "" {
		prev = f6(r.PrevBest)
	}
	errLine := r.Error
	if i := strings.IndexByte(errLine, '\n'); i >= 0 {
		errLine = errLine[:i]
	}
	if len(errLine) > 160 {
		errLine = errLine[:160] + "…"
	}
	row := []string{r.ID, l6(r.ValLoss), strconv.FormatFloat(r.UtilPct, 'f', 1, 64), r.Mark(), r.Description,
		l6(r.ValBPB), l6(r.TrainLoss), strconv.Itoa(r.Steps), strconv.FormatInt(r.Tokens, 10),
		strconv.FormatFloat(r.MsPerStep, 'f', 1, 64), strconv.FormatFloat(r.WallTimeS, 'f', 1, 64),
		r.Lineage, r.Parent, prev, r.Script, shortHash(r.ScriptHash),
		tsvTime(r.Started), tsvTime(r.Finished), errLine, r.Verdict, shortHash(r.ConfigHash), r.Budget}
	for i, s := range row {
		row[i] = strings.Map(func(c rune) rune {
			if c == '\t' || c == '\n' || c == '\r' {
				return ' '
			}
			return c
		}, s)
	}
	return row
}

// tsvTime is t to the second in UTC, "" for none (a running or killed run has no finish).
func tsvTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02T15:04:05Z")
}

func shortHash(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}

// ExportTSV rewrites <lab>/results.tsv from the database, atomically (temp file + rename). It
// holds the database's write lock while reading and writing, so when several processes export
// at once the last file written includes every run recorded before it.
func (l *Ledger) ExportTSV(ctx context.Context) (string, error) {
	path := filepath.Join(l.Dir, TSVFile)
	tx, err := l.beginWrite(ctx) // serialises exporters
	if err != nil {
		return path, fmt.Errorf("export %s: %w", path, err)
	}
	defer tx.Rollback()
	rows, err := tx.QueryContext(ctx, `SELECT `+cols+` FROM runs ORDER BY seq`)
	if err != nil {
		return path, fmt.Errorf("export %s: %w", path, err)
	}
	var b strings.Builder
	b.WriteString(strings.Join(TSVHeader, "\t") + "\n")
	for rows.Next() {
		r, err := scanRun(rows)
		if err != nil {
			rows.Close()
			return path, fmt.Errorf("export %s: %w", path, err)
		}
		b.WriteString(strings.Join(r.TSVRow(), "\t") + "\n")
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return path, fmt.Errorf("export %s: %w", path, err)
	}
	if err := WriteFileAtomic(path, []byte(b.String())); err != nil {
		return path, err
	}
	return path, tx.Commit()
}

// WriteFileAtomic writes data to a temporary file beside path and renames it over path, so a
// reader sees the old file or the new one, never a partial one.
func WriteFileAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(0o644)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
