package pgstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"regexp"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cairndb/cairn"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// DefaultSchema is the schema the engine uses when none is configured.
const DefaultSchema = "cairn"

// Options configure the engine. The zero value is ready to use.
type Options struct {
	// Schema is the PostgreSQL schema that holds the engine's tables. Empty
	// means the "schema" parameter of the URL, or DefaultSchema. It must
	// match [A-Za-z_][A-Za-z0-9_]* and be at most 50 bytes long.
	Schema string
	// MaxConns limits the connection pool. Zero means the URL's
	// pool_max_conns, or pgxpool's default (the larger of 4 and the number
	// of CPUs). Appends need few connections: one group transaction is in
	// flight at a time; the rest serve reads, batches and commits with
	// projections. The notifier's connection is not from the pool.
	MaxConns int32
	// PollInterval is how often the notifier reads the head in case a
	// notification was lost. Zero means 5 seconds.
	PollInterval time.Duration
	// Logger receives the engine's diagnostics. Nil discards them.
	Logger *slog.Logger
	// GroupTimeout bounds one attempt of a group of appends, which runs
	// on its own (appends whose group has started wait for its outcome
	// even when their own context ends). An attempt that takes longer,
	// say on a connection that went silent, is abandoned (at the latest
	// after twice GroupTimeout, as attempts share one deadline) and
	// tried again on another connection, where the engine recognises by
	// the first event id an append the abandoned attempt committed. Zero
	// means 30 seconds.
	GroupTimeout time.Duration
}

// EnsureDefaults fills in zero fields with their defaults.
func (o *Options) EnsureDefaults() {
	if o.Schema == "" {
		o.Schema = DefaultSchema
	}
	if o.PollInterval <= 0 {
		o.PollInterval = 5 * time.Second
	}
	if o.GroupTimeout <= 0 {
		o.GroupTimeout = 30 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

var schemaRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,49}$`)

// Store is the PostgreSQL engine. It is safe for concurrent use by any number
// of goroutines, and any number of Stores, in any number of processes, may
// share one schema: all coordination happens in the database. See the
// package documentation for how appends keep the global log gapless.
type Store struct {
	pool    *pgxpool.Pool
	opts    Options
	log     *slog.Logger
	channel string // NOTIFY channel of the schema

	// Table names, schema-qualified and quoted.
	chunks, streams, head, snapshots, readModel, indexRuns, durable, listeners string
	// durableMark is a subquery of the durable mark: every position
	// below it is committed, visible and durable (see migration 7).
	durableMark string
	// listened is set when the last durable mark written after an
	// asynchronous commit found listeners of the schema (see migration 9).
	listened atomic.Bool
	// readCommitted is set when the connections' transactions run at
	// READ COMMITTED unless told otherwise (default_transaction_isolation),
	// as the group calls need: a synchronous call then runs without
	// BEGIN and COMMIT, in the implicit transaction of its batch.
	readCommitted bool
	// version is the schema's migration, once migrated: a schema before
	// migration 9 (in tests of migrations) has no listeners table.
	version atomic.Int32

	// stats counts the group commit (CommitStats).
	stats commitCounters

	// Locks: mu and commit.mu are never held together; both are leaves.
	commit    committer
	mu        sync.Mutex // orders Notify against Close
	closed    atomic.Bool
	done      chan struct{} // closed by Close, stops notifiers
	notifiers sync.WaitGroup
}

var (
	_ cairn.Backend         = (*Store)(nil)
	_ cairn.SizedReader     = (*Store)(nil)
	_ cairn.BatchAppender   = (*Store)(nil)
	_ cairn.Truncater       = (*Store)(nil)
	_ cairn.Tombstoner      = (*Store)(nil)
	_ cairn.Compacter       = (*Store)(nil)
	_ cairn.DiskSizer       = (*Store)(nil)
	_ cairn.HealthChecker   = (*Store)(nil)
	_ cairn.Snapshotter     = (*Store)(nil)
	_ cairn.TxCommitter     = (*Store)(nil)
	_ cairn.ReadModelReader = (*Store)(nil)
	_ cairn.Notifier        = (*Store)(nil)
	_ cairn.IndexReader     = (*Store)(nil)
	_ cairn.Querier         = (*Store)(nil)
	_ cairn.GroupCommitter  = (*Store)(nil)
)

// Open connects to the database at url (postgres://user:pass@host:port/db?…,
// or a pgx keyword/value connection string), creates or migrates the schema,
// and returns the engine. The URL may carry a "schema" parameter, used when
// opts.Schema is empty; pool parameters such as pool_max_conns are honoured.
func Open(ctx context.Context, url string, opts Options) (*Store, error) {
	connString, urlSchema, err := splitSchema(url)
	if err != nil {
		return nil, err
	}
	if opts.Schema == "" {
		opts.Schema = urlSchema
	}
	opts.EnsureDefaults()
	if !schemaRE.MatchString(opts.Schema) {
		return nil, fmt.Errorf("pgstore: invalid schema %q: use 1 to 50 letters, digits and underscores, not starting with a digit", opts.Schema)
	}
	cfg, err := pgxpool.ParseConfig(connString)
	if err != nil {
		return nil, fmt.Errorf("pgstore: %w", err)
	}
	if opts.MaxConns > 0 {
		cfg.MaxConns = opts.MaxConns
	}
	if cfg.ConnConfig.RuntimeParams["application_name"] == "" {
		cfg.ConnConfig.RuntimeParams["application_name"] = "cairn:" + opts.Schema
	}
	if _, ok := cfg.ConnConfig.RuntimeParams["jit"]; !ok {
		// The engine's queries are short; PostgreSQL's JIT compiler,
		// which the planner's estimates for index reads call in, took
		// 0.6 s to compile a read by query that ran in 30 ms.
		cfg.ConnConfig.RuntimeParams["jit"] = "off"
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("pgstore: %w", err)
	}
	s := newStore(pool, opts)
	if err := s.migrate(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	// A process that ended between the commit of its events and their
	// durable mark left them for the next mark: write it.
	if _, err := s.settle(ctx, s.pool); err != nil {
		pool.Close()
		return nil, fmt.Errorf("pgstore: %w", err)
	}
	var isolation string
	if err := pool.QueryRow(ctx, `SELECT current_setting('default_transaction_isolation')`).Scan(&isolation); err != nil {
		pool.Close()
		return nil, fmt.Errorf("pgstore: %w", err)
	}
	s.readCommitted = isolation == "read committed"
	return s, nil
}

func newStore(pool *pgxpool.Pool, opts Options) *Store {
	q := func(table string) string { return pgx.Identifier{opts.Schema, table}.Sanitize() }
	s := &Store{
		pool:      pool,
		opts:      opts,
		log:       opts.Logger,
		channel:   "cairn_" + opts.Schema,
		chunks:    q("chunks"),
		streams:   q("streams"),
		head:      q("head"),
		snapshots: q("snapshots"),
		readModel: q("read_model"),
		indexRuns: q("index_runs"),
		durable:   q("durable"),
		listeners: q("listeners"),
		done:      make(chan struct{}),
	}
	s.durableMark = `(SELECT coalesce(max(next), 0) FROM ` + s.durable + `)`
	// Until a mark says otherwise, a writer notifies as if someone
	// listened.
	s.listened.Store(true)
	return s
}

// splitSchema removes the "schema" parameter from a URL connection string,
// which pgx would otherwise send to the server as a setting.
func splitSchema(raw string) (connString, schema string, err error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return raw, "", nil // a keyword/value string: pgx parses it
	}
	q := u.Query()
	if !q.Has("schema") {
		return raw, "", nil
	}
	schema = q.Get("schema")
	q.Del("schema")
	u.RawQuery = q.Encode()
	return u.String(), schema, nil
}

// Schema returns the name of the engine's schema.
func (s *Store) Schema() string { return s.opts.Schema }

// Pool returns the engine's connection pool, for running queries next to the
// engine (for example reading a projection's own tables). The engine owns
// it: do not close it.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

func (s *Store) check(ctx context.Context) error {
	if s.closed.Load() {
		return cairn.ErrClosed
	}
	return ctx.Err()
}

// Close stops notifications and closes the connection pool, waiting for
// operations in progress to return their connections. Calls after Close
// fail with cairn.ErrClosed.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed.Swap(true) {
		s.mu.Unlock()
		return cairn.ErrClosed
	}
	s.mu.Unlock()
	close(s.done)
	s.notifiers.Wait()
	s.pool.Close()
	return nil
}

// Health implements [cairn.HealthChecker]: it reads the head row, which
// needs a working connection and the schema in place.
func (s *Store) Health(ctx context.Context) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	var next int64
	if err := s.pool.QueryRow(ctx, "SELECT next FROM "+s.head).Scan(&next); err != nil {
		return s.wrap("health", err)
	}
	return nil
}

// DiskBytes implements [cairn.DiskSizer]: the total size of the schema's
// tables, with their indexes and TOAST data.
func (s *Store) DiskBytes(ctx context.Context) (int64, error) {
	if err := s.check(ctx); err != nil {
		return 0, err
	}
	var n int64
	err := s.pool.QueryRow(ctx, `
		SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = $1 AND c.relkind IN ('r', 'm', 'p')`, s.opts.Schema).Scan(&n)
	if err != nil {
		return 0, s.wrap("disk bytes", err)
	}
	return n, nil
}

// wrap adds the operation and the engine's name to a database error. It
// turns errors caused by a closed store into cairn.ErrClosed.
func (s *Store) wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	if s.closed.Load() && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("pgstore: %s: %w", op, cairn.ErrClosed)
	}
	return fmt.Errorf("pgstore: %s: %w", op, err)
}

// retryable reports whether an attempt that failed with err may be made
// again: the connection failed (the outcome is unknown, and retry detection
// by event id makes a second attempt safe), or PostgreSQL aborted the
// transaction for a deadlock or serialization failure.
func retryable(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "40001", "40P01": // serialization_failure, deadlock_detected
			return true
		case "57P01", "57P02", "57P03": // admin_shutdown, crash_shutdown, cannot_connect_now
			return true
		}
		return false
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var connErr *pgconn.ConnectError
	if errors.As(err, &connErr) {
		return true
	}
	// Anything else that is not a server error: the connection broke
	// (io.EOF, a reset, "conn closed").
	return true
}
