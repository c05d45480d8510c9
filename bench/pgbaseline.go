package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"strconv"
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

// The ordering floor.
//
// What any store must do on PostgreSQL to hand each append of many
// processes a position in one gapless order, return it, and keep a reader
// from seeing a position before the ones below it: check the stream's
// expected version on its row, take the next position from one head row
// (whose lock orders the appends), write the event's row (keyed by its
// position, and by its stream and version for reading a stream), and, since
// holding that lock through each commit's WAL flush serialises the
// flushes of all processes, commit asynchronously and then make the
// append durable with a synchronous commit of its own, which marks what
// readers may read. That is two transactions, one round trip, and no
// index, retry record, tag or notification: cairn's engine does all of
// it and more (migration 7 of pgstore). M1 runs the floor from as many
// processes as its own, and W1 from one writer (loneFloor), beside the
// plain INSERTs, so that their figures read beside what the order alone
// costs on the machine.

// floorTables creates the floor's tables in the baseline's schema.
func (p *PostgresBaseline) floorTables(ctx context.Context) error {
	s := p.schema
	_, err := p.pool.Exec(ctx, `
		CREATE TABLE IF NOT EXISTS `+s+`.floor_streams (id text PRIMARY KEY, version bigint NOT NULL);
		CREATE TABLE IF NOT EXISTS `+s+`.floor_head (next bigint NOT NULL);
		INSERT INTO `+s+`.floor_head SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM `+s+`.floor_head);
		CREATE TABLE IF NOT EXISTS `+s+`.floor_events (position bigint PRIMARY KEY, stream text NOT NULL, version bigint NOT NULL,
			id uuid NOT NULL, type text NOT NULL, data bytea NOT NULL, created timestamptz NOT NULL, UNIQUE (stream, version));
		CREATE TABLE IF NOT EXISTS `+s+`.floor_durable (backend int PRIMARY KEY, next bigint NOT NULL)`)
	if err != nil {
		return fmt.Errorf("postgres baseline: the ordering floor's tables: %w", err)
	}
	return nil
}

// floorAppender returns a function that appends one event to stream
// through the ordering floor over conn, the stream's first append being
// the one after, whose expected version is -1; the tables are in the
// (quoted) schema. An append whose expected version does not hold fails.
func floorAppender(ctx context.Context, conn *pgx.Conn, schema, stream string, data []byte) (func(expected int64) error, error) {
	if _, err := conn.Exec(ctx, `INSERT INTO `+schema+`.floor_streams VALUES ($1, -1)`, stream); err != nil {
		return nil, err
	}
	write := floorWrite(schema)
	mark := `INSERT INTO ` + schema + `.floor_durable SELECT pg_backend_pid(), next FROM ` + schema + `.floor_head
		ON CONFLICT (backend) DO UPDATE SET next = excluded.next`
	return func(expected int64) error {
		b := &pgx.Batch{}
		b.Queue("BEGIN")
		b.Queue("SET LOCAL synchronous_commit = off")
		b.Queue(write, stream, expected, uuid.Must(uuid.NewV7()), data)
		b.Queue("COMMIT")
		// The batch's implicit transaction, committed synchronously by
		// its end: its WAL flush covers the write's commit.
		b.Queue(mark)
		br := conn.SendBatch(ctx, b)
		err := func() error {
			for range 2 {
				if _, err := br.Exec(); err != nil {
					return err
				}
			}
			var pos int64
			if err := br.QueryRow().Scan(&pos); err != nil {
				if errors.Is(err, pgx.ErrNoRows) {
					return fmt.Errorf("the ordering floor: append to %s: expected version %d does not hold", stream, expected)
				}
				return err
			}
			for range 2 {
				if _, err := br.Exec(); err != nil {
					return err
				}
			}
			return nil
		}()
		return errors.Join(err, br.Close())
	}, nil
}

// floorWrite is the floor's write of one event: to stream $1 at expected
// version $2, with id $3 and data $4; it returns the event's position, and
// no row when the expected version does not hold. The tables are in the
// (quoted) schema.
func floorWrite(schema string) string {
	return `WITH s AS (
			UPDATE ` + schema + `.floor_streams SET version = version + 1 WHERE id = $1 AND version = $2 RETURNING version
		), h AS (
			UPDATE ` + schema + `.floor_head SET next = next + 1 WHERE EXISTS (SELECT 1 FROM s) RETURNING next - 1 AS position
		)
		INSERT INTO ` + schema + `.floor_events SELECT h.position, $1, s.version, $3, 'Measured', $4, now() FROM s, h RETURNING position`
}

// loneFloor runs W1's shape through the ordering floor and returns each
// append's latency: one writer, appends single-event appends of size bytes
// round-robin over streams streams, each with the stream's exact expected
// version. The streams are created first, untimed, each at version 0, as
// W1's have one event before the timed appends. A writer alone has no
// flush of another process to wait behind, so the least it does is one
// transaction: the floor's write, committed synchronously, in one round
// trip.
func (p *PostgresBaseline) loneFloor(ctx context.Context, streams, appends, size int) ([]time.Duration, error) {
	if err := p.floorTables(ctx); err != nil {
		return nil, err
	}
	_, err := p.pool.Exec(ctx, `INSERT INTO `+p.schema+`.floor_streams SELECT 'w1-floor-' || i, 0 FROM generate_series(0, $1 - 1) i`, streams)
	if err != nil {
		return nil, fmt.Errorf("postgres baseline: the ordering floor's streams: %w", err)
	}
	conn, err := p.pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("postgres baseline: %w", err)
	}
	defer conn.Release()
	data := make([]byte, size)
	_, _ = rand.Read(data)
	write := floorWrite(p.schema)
	versions := make([]int64, streams)
	lat := make([]time.Duration, 0, appends)
	for i := range appends {
		st := i % streams
		stream := "w1-floor-" + strconv.Itoa(st)
		t := time.Now()
		var pos int64
		if err := conn.QueryRow(ctx, write, stream, versions[st], uuid.Must(uuid.NewV7()), data).Scan(&pos); err != nil {
			if errors.Is(err, pgx.ErrNoRows) {
				err = fmt.Errorf("expected version %d does not hold", versions[st])
			}
			return lat, fmt.Errorf("the ordering floor: append to %s: %w", stream, err)
		}
		lat = append(lat, time.Since(t))
		versions[st]++
	}
	return lat, nil
}

// Close implements [Baseline]: it drops the baseline's schema.
func (p *PostgresBaseline) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err := p.pool.Exec(ctx, "DROP SCHEMA "+p.schema+" CASCADE")
	p.pool.Close()
	return err
}
