package queue

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"

	"github.com/anelab/anelab/kernel/ledger"
)

// pgBackend is River's pgx driver on a PostgreSQL database: the one a fleet's workers share with
// the ledger (ANELAB_DB).
type pgBackend struct{ pool *pgxpool.Pool }

// migrateLockKey is the advisory lock two workers starting together take around River's
// migrations, so that only one of them creates the tables.
const migrateLockKey = 0x616e656c6162 + 1 // "anelab" + 1 (the ledger's own lock is another key)

func openPostgres(ctx context.Context, lab, url string) (backend, error) {
	// The ledger first: it checks the URL, says what is wrong with it, and creates its tables.
	l, err := ledger.OpenURL(lab, url)
	if err != nil {
		return nil, err
	}
	l.Close()
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("queue database %s: %v", redact(url), err)
	}
	cfg.ConnConfig.RuntimeParams["application_name"] = "anelab-queue"
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = 30 * time.Second
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("queue database %s: %v", redact(url), err)
	}
	b := &pgBackend{pool: pool}
	if err := b.migrate(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("queue database %s: River's tables: %w", redact(url), err)
	}
	return b, nil
}

func (b *pgBackend) migrate(ctx context.Context) error {
	m, err := rivermigrate.New(riverpgxv5.New(b.pool), &rivermigrate.Config{Logger: quietLogger(io.Discard)})
	if err != nil {
		return err
	}
	// Some of River's migrations cannot share one transaction (a new enum value is used in the
	// next), so each runs in its own; a session advisory lock, held on one connection around
	// them, keeps a second worker starting at the same moment from migrating too.
	conn, err := b.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, int64(migrateLockKey)); err != nil {
		return err
	}
	defer conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, int64(migrateLockKey))
	_, err = m.Migrate(ctx, rivermigrate.DirectionUp, nil)
	return err
}

func (b *pgBackend) newClient(cfg *river.Config) (client, riverdriver.Executor, error) {
	d := riverpgxv5.New(b.pool)
	c, err := river.NewClient(d, cfg)
	if err != nil {
		return nil, nil, err
	}
	return c, d.GetExecutor(), nil
}

func (b *pgBackend) close() error {
	b.pool.Close()
	return nil
}
