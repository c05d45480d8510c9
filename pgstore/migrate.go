package pgstore

import (
	"context"
	"fmt"
	"hash/fnv"
	"strings"

	"github.com/jackc/pgx/v5"
)

// migrations are applied in order, each once, and recorded in the schema's
// migrations table. Migration N is the constant migrationN, in its own file
// migrationN.go. Never edit a released migration (TestMigrationsFrozen
// holds their checksums): append a new one. In each, {{s}} stands for the
// quoted schema name.
var migrations = []string{
	migration1,
	migration2,
	migration3,
	migration4,
	migration5,
	migration6,
	migration7,
	migration8,
	migration9,
	migration10,
	migration11,
}

// migrationSteps are the steps of migrations that SQL cannot do alone, run
// in Go right after the migration's SQL, in its transaction.
var migrationSteps = map[int]func(ctx context.Context, tx pgx.Tx, schema string) error{
	6: backfillIndex,
}

// migrate creates the schema and applies the migrations it lacks, in one
// transaction under an advisory lock keyed by the schema name: a process
// that starts while another migrates waits, then finds nothing left to do.
func (s *Store) migrate(ctx context.Context) error {
	return s.migrateTo(ctx, len(migrations))
}

// migrateTo applies the migrations up to version to.
func (s *Store) migrateTo(ctx context.Context, to int) error {
	schema := pgx.Identifier{s.opts.Schema}.Sanitize()
	h := fnv.New64a()
	h.Write([]byte("cairn migrate " + s.opts.Schema))
	key := int64(h.Sum64())

	var version int
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", key); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+schema); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "CREATE TABLE IF NOT EXISTS "+schema+".migrations (version int PRIMARY KEY, applied timestamptz NOT NULL DEFAULT now())"); err != nil {
			return err
		}
		var have int
		if err := tx.QueryRow(ctx, "SELECT coalesce(max(version), 0) FROM "+schema+".migrations").Scan(&have); err != nil {
			return err
		}
		if have > len(migrations) {
			return fmt.Errorf("schema %s is at version %d, newer than this build knows (%d): upgrade cairn", s.opts.Schema, have, len(migrations))
		}
		version = max(have, to)
		for v := have + 1; v <= to; v++ {
			sql := strings.ReplaceAll(migrations[v-1], "{{s}}", schema)
			if _, err := tx.Exec(ctx, sql); err != nil {
				return fmt.Errorf("migration %d: %w", v, err)
			}
			if step := migrationSteps[v]; step != nil {
				if err := step(ctx, tx, schema); err != nil {
					return fmt.Errorf("migration %d: %w", v, err)
				}
			}
			if _, err := tx.Exec(ctx, "INSERT INTO "+schema+".migrations (version) VALUES ($1)", v); err != nil {
				return err
			}
			s.log.Info("pgstore: applied migration", "schema", s.opts.Schema, "version", v)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("pgstore: migrate schema %s: %w", s.opts.Schema, err)
	}
	s.version.Store(int32(version))
	return nil
}
