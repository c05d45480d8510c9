package pgstore

// migration1: the initial tables.
const migration1 = `
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
		first        boolean NOT NULL, -- the first event of its append
		CONSTRAINT events_stream_version_key UNIQUE (stream, version)
	);
	-- Retry detection looks up the first event of an append by id; only
	-- first events are indexed, so a large append costs one entry.
	CREATE UNIQUE INDEX events_id_key ON {{s}}.events (id) WHERE first;
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
	`
