package queue

import (
	"context"
	"fmt"
)

// openPostgres opens the queue on a PostgreSQL database (a fleet's one URL).
func openPostgres(ctx context.Context, url string) (backend, error) {
	return nil, fmt.Errorf("queue database %s: PostgreSQL is not supported yet", redact(url))
}
