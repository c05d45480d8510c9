package pgstore

import (
	"context"
	"fmt"
	"hash/fnv"
	"strings"

	"github.com/jackc/pgx/v5"
)

// migrations are applied in order, each once, and recorded in the schema's
// migrations table. Never edit a released migration: append a new one. In
// each, {{s}} stands for the quoted schema name.
var migrations = []string{
	// 1: the initial tables.
	`
	CREATE TABLE {{s}}.streams (
		id         text COLLATE "C" PRIMARY KEY,
		version    bigint  NOT NULL DEFAULT -1,    -- last version written, -1 when none
		before     bigint  NOT NULL DEFAULT 0,     -- versions below are truncated or deleted
		deleted    boolean NOT NULL DEFAULT false, -- soft-deleted and not recreated
		tombstoned boolean NOT NULL DEFAULT false
	);
	CREATE TABLE {{s}}.events (
		position     bigint PRIMARY KEY,
		stream       text COLLATE "C" NOT NULL,
		version      bigint NOT NULL,
		id           uuid NOT NULL,
		type         text NOT NULL,
		content_type smallint NOT NULL,
		data         bytea,
		metadata     bytea,
		tags         text[],
		created      timestamptz NOT NULL,
		CONSTRAINT events_id_key UNIQUE (id),
		CONSTRAINT events_stream_version_key UNIQUE (stream, version)
	);
	CREATE TABLE {{s}}.head (
		only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
		next     bigint NOT NULL
	);
	INSERT INTO {{s}}.head (next) VALUES (0);
	CREATE TABLE {{s}}.snapshots (
		stream   text COLLATE "C" PRIMARY KEY,
		version  bigint NOT NULL,
		data     bytea,
		metadata bytea,
		created  timestamptz NOT NULL
	);
	CREATE TABLE {{s}}.read_model (
		tbl   text COLLATE "C" NOT NULL,
		key   text COLLATE "C" NOT NULL,
		value bytea,
		PRIMARY KEY (tbl, key)
	);
	`,
}

// migrate creates the schema and applies the migrations it lacks, in one
// transaction under an advisory lock keyed by the schema name: a process
// that starts while another migrates waits, then finds nothing left to do.
func (s *Store) migrate(ctx context.Context) error {
	schema := pgx.Identifier{s.opts.Schema}.Sanitize()
	h := fnv.New64a()
	h.Write([]byte("cairn migrate " + s.opts.Schema))
	key := int64(h.Sum64())

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
		for v := have + 1; v <= len(migrations); v++ {
			sql := strings.ReplaceAll(migrations[v-1], "{{s}}", schema)
			if _, err := tx.Exec(ctx, sql); err != nil {
				return fmt.Errorf("migration %d: %w", v, err)
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
	return nil
}
