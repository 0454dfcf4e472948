package ledger

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Runs of a job queue (kernel/queue). Several workers record into one ledger at once, so:
//
//   - a repeat set's runs finish in any order: the set is decided by its last-recorded run (the
//     one whose Record finds every other repeat index recorded), not by its highest index;
//   - a job may be attempted more than once (its worker was killed): each attempt has its own
//     run id, and Abandon accounts for an attempt that ended without recording, so every attempt
//     is exactly one row.

// moveHead makes id the head of lineage.
func moveHead(ctx context.Context, tx sqlTx, lineage, id string) error {
	if _, err := tx.ExecContext(ctx, `INSERT INTO lineages (name, head, updated) VALUES (?, ?, ?)
		ON CONFLICT(name) DO UPDATE SET head = excluded.head, updated = excluded.updated`,
		lineage, id, time.Now().UTC().Format(timeFmt)); err != nil {
		return fmt.Errorf("ledger: move head of %q: %w", lineage, err)
	}
	return nil
}

// recordedRepeats is how many distinct repeat indices of set have an end recorded (running and
// killed rows are not ends; a retried attempt of one index counts once).
func recordedRepeats(ctx context.Context, tx sqlTx, set string) (int, error) {
	var n int
	err := tx.QueryRowContext(ctx, `SELECT COUNT(DISTINCT repeat_idx) FROM runs WHERE repeat_of = ? AND status NOT IN (?, ?)`,
		set, StatusRunning, StatusKilled).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("ledger: count repeats of %s: %w", set, err)
	}
	return n, nil
}

// setPending sets r.Pending (r is inserted): more of its repeat set is still to be recorded.
func setPending(ctx context.Context, tx sqlTx, r *Run) error {
	r.Pending = false
	if r.RepeatOf == "" || r.Repeats <= 1 {
		return nil
	}
	n, err := recordedRepeats(ctx, tx, r.RepeatOf)
	r.Pending = n < r.Repeats
	return err
}

// settleFailedLast decides a repeat set whose last-recorded run did not train (crash, timeout, …):
// the set's latest undecided ok run is judged against the head as it stands now, in this
// transaction, and decides for the set. (When the last-recorded run is ok, decide did it.)
func settleFailedLast(ctx context.Context, tx sqlTx, r *Run) error {
	if r.Status == StatusOK || r.RepeatOf == "" || r.Repeats <= 1 {
		return nil
	}
	if n, err := recordedRepeats(ctx, tx, r.RepeatOf); err != nil || n < r.Repeats {
		return err
	}
	d, err := scanRun(tx.QueryRowContext(ctx, `SELECT `+cols+` FROM runs WHERE repeat_of = ? AND status = ? AND decision = ''
		ORDER BY seq DESC LIMIT 1`, r.RepeatOf, StatusOK))
	if errors.Is(err, sql.ErrNoRows) {
		return nil // no repeat of the set trained: nothing to decide
	}
	if err != nil {
		return fmt.Errorf("ledger: settle repeats of %s: %w", r.RepeatOf, err)
	}
	d.Pending, d.PrevHead, d.PrevBest = false, r.PrevHead, r.PrevBest
	if err := decide(ctx, tx, &d); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE runs SET prev_head = ?, prev_best = ? WHERE id = ?`, d.PrevHead, d.PrevBest, d.ID); err != nil {
		return fmt.Errorf("ledger: settle repeats of %s: %w", r.RepeatOf, err)
	}
	if d.Decision == Keep {
		return moveHead(ctx, tx, d.Lineage, d.ID)
	}
	return nil
}

// Abandon accounts for an attempt of a queued job that ended without recording a result (its
// worker was killed, or the attempt failed outside the run): in one transaction, a running row
// with r.ID becomes killed with msg; with no row, r is inserted as killed; a killed row stays as
// it is; a row that already
// records an end is left as it is and recorded is true — the job's work is done, and running it
// again would give it two rows. r needs ID, Lineage and what describes the job (script, index,
// description, repeat set).
func (l *Ledger) Abandon(ctx context.Context, r *Run, msg string) (recorded bool, err error) {
	if err := CheckLineage(r.Lineage); err != nil {
		return false, err
	}
	tx, err := l.beginWrite(ctx)
	if err != nil {
		return false, fmt.Errorf("ledger: %w", err)
	}
	defer tx.Rollback()
	var status string
	err = tx.QueryRowContext(ctx, `SELECT status FROM runs WHERE id = ?`, r.ID).Scan(&status)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		r.Status, r.Error, r.Decision, r.Checkpoint, r.Finished = StatusKilled, msg, "", "", time.Time{}
		if r.Started.IsZero() {
			r.Started = time.Now()
		}
		if err := insertRun(ctx, tx, r); err != nil {
			return false, err
		}
	case err != nil:
		return false, fmt.Errorf("ledger: abandon %s: %w", r.ID, err)
	case status == StatusKilled: // already accounted for (by Reap, or an earlier Abandon)
		return false, nil
	case status == StatusRunning:
		if _, err := tx.ExecContext(ctx, `UPDATE runs SET status = ?, error = ? WHERE id = ?`, StatusKilled, msg, r.ID); err != nil {
			return false, fmt.Errorf("ledger: abandon %s: %w", r.ID, err)
		}
	default:
		return true, nil
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("ledger: abandon %s: %w", r.ID, err)
	}
	return false, nil
}

// ProcessGone reports whether a process this ledger would stamp on a running row (pid on host,
// machine boot id) is known to have ended: same host, and another boot or no such pid. The queue
// asks it about the workers that hold jobs.
func ProcessGone(pid int, host, boot string) bool { return ended(pid, host, boot) }

// Self is this process's host name and boot id, as Start stamps them.
func Self() (host, boot string) { return self.host, self.boot }
