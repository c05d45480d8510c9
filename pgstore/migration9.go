package pgstore

// migration9: no notification where nobody listens.
//
// A write that commits asynchronously (the processes that write side by
// side) was followed by three transactions' worth of statements in its
// round trip: its durable mark, then notify_durable, whose NOTIFY takes
// the database's notification lock and wakes the listening backends.
// Most processes only write (cairn.Store listens only once a subscriber
// asks), and then nobody hears the NOTIFY. Now the listeners of the
// schema are recorded in the listeners table (one row per listening
// backend), and a writer that found none at its last mark makes its next
// mark with mark_durable_listened and its channel, which notifies the
// channel itself, in the mark's transaction, only when a listener exists;
// the writer then queues notify_durable again after its following writes.
// A writer that found listeners queues notify_durable as before, and
// calls mark_durable_listened without a channel.
//
// The race it must not lose: a listener that registers while a mark is
// in flight, which did not see its row and so does not notify, must read
// that mark when it reads the head after LISTEN. So a mark holds the
// schema's listen gate (an advisory lock) shared from before it looks for
// listeners until it commits, and a listener registers under the gate
// held exclusively: its registration commits after every mark that might
// have missed it, and its first read of the head, after its LISTEN, sees
// them. A mark that starts after the registration sees the row and
// notifies at its commit, which the listener hears, or reads, if it came
// before the LISTEN, with its first read of the head.
//
// A listener removes its row when it stops; rows of backends that are
// gone (a process killed) are removed by the next registration, and until
// then only cost writers a NOTIFY nobody hears.
//
// Builds before this one listen without registering: writers of this
// build would not notify them (they would catch up at their next poll,
// Options.PollInterval). Stop them before migrating, as for migration 7.
const migration9 = `
	CREATE TABLE {{s}}.listeners (
		backend int PRIMARY KEY -- pg_backend_pid() of the listening connection
	);

	-- listen_gate is the advisory lock that orders marks against the
	-- registration of a listener: one key per schema.
	CREATE FUNCTION {{s}}.listen_gate() RETURNS bigint LANGUAGE sql IMMUTABLE AS $fn$
		SELECT hashtextextended('cairn listen ' || '{{s}}', 0)
	$fn$;

	-- listen_register records the connection as a listener of the schema,
	-- and forgets the listeners whose backends are gone. Called before
	-- LISTEN, in a transaction of its own.
	CREATE FUNCTION {{s}}.listen_register() RETURNS void LANGUAGE plpgsql AS $fn$
	BEGIN
		PERFORM pg_advisory_xact_lock({{s}}.listen_gate());
		DELETE FROM {{s}}.listeners l WHERE NOT EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.pid = l.backend);
		INSERT INTO {{s}}.listeners (backend) VALUES (pg_backend_pid()) ON CONFLICT DO NOTHING;
	END
	$fn$;

	-- mark_durable_listened is mark_durable, and tells whether the schema
	-- has listeners. With p_channel, it notifies the channel of the mark
	-- when it has, at the commit of its transaction, which must commit
	-- synchronously (so the notification lock is held through the flush:
	-- a writer passes its channel only when it found no listener at its
	-- last mark, and queues notify_durable otherwise).
	CREATE FUNCTION {{s}}.mark_durable_listened(p_channel text, OUT mark bigint, OUT listened boolean) LANGUAGE plpgsql AS $fn$
	BEGIN
		PERFORM pg_advisory_xact_lock_shared({{s}}.listen_gate());
		mark := {{s}}.mark_durable();
		listened := EXISTS (SELECT 1 FROM {{s}}.listeners);
		IF listened AND p_channel IS NOT NULL AND mark > 0 THEN
			PERFORM pg_notify(p_channel, (mark - 1)::text);
		END IF;
	END
	$fn$;
	`
