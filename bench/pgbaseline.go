package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// PostgresBaseline is the reference for the PostgreSQL engine: the same
// appends as plain INSERTs into a bare table (no key, no index, no
// constraint) in the same database, one autocommit statement per append
// over as many connections as there are writers: a single-row INSERT for
// one record, a multi-row INSERT (of unnested arrays, so that every
// record's bytes are sent) for more. PostgreSQL's own group commit shares
// WAL flushes between concurrent writers. The table lives in a schema of
// its own, dropped by Close.
type PostgresBaseline struct {
	pool   *pgxpool.Pool
	url    string // of the database, for worker processes (M1)
	schema string // quoted
	table  string // quoted, schema-qualified
	// records appended so far, which ReadAll reads back
	records int
}

// NewPostgresBaseline connects to the database at rawURL (a "schema"
// parameter, meant for the engine, is ignored) and creates the baseline's
// table.
func NewPostgresBaseline(ctx context.Context, rawURL string) (*PostgresBaseline, error) {
	cfg, err := pgxpool.ParseConfig(withoutSchema(rawURL))
	if err != nil {
		return nil, fmt.Errorf("postgres baseline: %w", err)
	}
	cfg.MaxConns = 64
	cfg.ConnConfig.RuntimeParams["application_name"] = "cairn bench baseline"
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres baseline: %w", err)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "cairn_bench_raw_" + hex.EncodeToString(b[:])
	p := &PostgresBaseline{
		pool:   pool,
		url:    withoutSchema(rawURL),
		schema: pgx.Identifier{name}.Sanitize(),
		table:  pgx.Identifier{name, "raw"}.Sanitize(),
	}
	_, err = pool.Exec(ctx, "CREATE SCHEMA "+p.schema+"; CREATE TABLE "+p.table+
		" (stream text, version bigint, id uuid, type text, data bytea, created timestamptz)")
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres baseline: %w", err)
	}
	return p, nil
}

// withoutSchema removes the engine's "schema" parameter from a URL, which
// the server would otherwise reject as an unknown setting.
func withoutSchema(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return raw
	}
	q := u.Query()
	if !q.Has("schema") {
		return raw
	}
	q.Del("schema")
	u.RawQuery = q.Encode()
	return u.String()
}

// Name implements [Baseline].
func (p *PostgresBaseline) Name() string { return "plain INSERT" }

// Append implements [Baseline].
func (p *PostgresBaseline) Append(ctx context.Context, writers, appends, perAppend, size int) ([]time.Duration, time.Duration, error) {
	data := make([]byte, size)
	_, _ = rand.Read(data)
	one := "INSERT INTO " + p.table + " (stream, version, id, type, data, created) VALUES ($1, $2, $3, 'Measured', $4, now())"
	many := "INSERT INTO " + p.table + " (stream, version, id, type, data, created) " +
		"SELECT $1, $2 + u.n - 1, u.id, 'Measured', u.data, now() FROM unnest($3::uuid[], $4::bytea[]) WITH ORDINALITY AS u(id, data, n)"
	lat := make([][]time.Duration, writers)
	errs := make([]error, writers)
	var wg sync.WaitGroup
	start := time.Now()
	for w := range writers {
		wg.Go(func() {
			stream := fmt.Sprintf("raw-%d", w)
			ids := make([][16]byte, perAppend) // sent in binary
			datas := make([][]byte, perAppend)
			for i := range datas {
				datas[i] = data
			}
			for i := range appends {
				for k := range ids {
					ids[k] = uuid.Must(uuid.NewV7())
				}
				t := time.Now()
				var err error
				if perAppend == 1 {
					_, err = p.pool.Exec(ctx, one, stream, int64(i), ids[0], data)
				} else {
					_, err = p.pool.Exec(ctx, many, stream, int64(i*perAppend), ids, datas)
				}
				if err != nil {
					errs[w] = err
					return
				}
				lat[w] = append(lat[w], time.Since(t))
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	p.records += writers * appends * perAppend
	return all, elapsed, errors.Join(errs...)
}

// ReadAll implements [BaselineReader]: one query reads the table's rows
// back, streamed.
func (p *PostgresBaseline) ReadAll(ctx context.Context) (int, time.Duration, error) {
	start := time.Now()
	rows, err := p.pool.Query(ctx, "SELECT stream, version, id, type, data, created FROM "+p.table)
	if err != nil {
		return 0, 0, err
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var (
			stream, typ string
			version     int64
			id          uuid.UUID
			data        []byte
			created     time.Time
		)
		if err := rows.Scan(&stream, &version, &id, &typ, &data, &created); err != nil {
			return n, time.Since(start), err
		}
		n++
	}
	return n, time.Since(start), rows.Err()
}

// Close implements [Baseline]: it drops the baseline's schema.
func (p *PostgresBaseline) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err := p.pool.Exec(ctx, "DROP SCHEMA "+p.schema+" CASCADE")
	p.pool.Close()
	return err
}
