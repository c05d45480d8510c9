package pgstore

// migration10: a lone synchronous append notifies only where someone
// listens.
//
// Migration 9 stopped the writes that commit asynchronously (processes
// writing side by side) from notifying while no listener is registered;
// a Store writing alone, whose append_one commits synchronously and
// writes its durable mark itself, still sent its NOTIFY at every append.
// Now append_one looks for a registered listener in the statement that
// writes the mark, and notifies only when it finds one.
//
// The race it must not lose is migration 9's: a listener that registers
// while such an append is in flight, which did not see its row, must read
// that append when it reads the head after LISTEN. A synchronous append
// holds the head row's lock from its increment to its commit, and looks
// for listeners in a statement that starts after it took that lock; so
// listen_register now also locks the head row (FOR SHARE) before it
// records the listener: it waits for the append in flight to commit, and
// an append that takes the lock after it waits for the registration to
// commit, and then sees the listener. The appends that commit
// asynchronously still take the listen gate at their mark, as before.
//
// append_one is otherwise migration 8's. append_group, which a Store
// writing alone calls for groups of more than one append or with
// conditions, still notifies at every synchronous group.
//
// Builds before this one register listeners without the head row's lock:
// such a listener may miss, until its next poll (Options.PollInterval), an
// append of this build that was in flight when it registered. Stop them
// before migrating, as for migration 9.
const migration10 = `
	CREATE OR REPLACE FUNCTION {{s}}.append_one(
		p_stream text, p_expected bigint,
		p_ids uuid[], p_types text[], p_ctypes smallint[], p_kinds int[],
		p_data bytea[], p_meta bytea[], p_tags text[], p_chunks int[],
		p_ix_kind smallint[], p_ix_value text[], p_ix_nrel bigint[], p_ix_off bigint[], p_ix_count int[], p_ix_new int,
		p_channel text,
		OUT status int, OUT out_version bigint, OUT out_position bigint, OUT rec_stream text, OUT rec_version bigint)
	LANGUAGE plpgsql
	SET plan_cache_mode = force_generic_plan
	AS $fn$
	DECLARE
		n int := cardinality(p_ids);
		v_before bigint; -- the stream's version before the append
		v_deleted boolean;
		v_tomb boolean;
		v_first bigint;
		v_end bigint;
		v_listened boolean;
		v_now timestamptz := clock_timestamp();
	BEGIN
		IF p_channel IS NULL THEN
			PERFORM set_config('synchronous_commit', 'off', true);
		END IF;
		<<decide>>
		BEGIN
			-- The stream's row: created when it is missing and may be
			-- (first, when the append expects no stream), or updated at
			-- once when the expectation holds, which the update checks
			-- again on the row's last version once it has its lock.
			IF p_expected = -1 THEN
				INSERT INTO {{s}}.streams (id, version) VALUES (p_stream, n - 1) ON CONFLICT (id) DO NOTHING;
				IF FOUND THEN
					v_before := -1;
					EXIT decide;
				END IF;
			END IF;
			UPDATE {{s}}.streams AS t SET version = t.version + n, deleted = false
			WHERE t.id = p_stream AND NOT t.tombstoned AND {{s}}.expected_ok(p_expected, CASE WHEN t.deleted THEN -1 ELSE t.version END)
			RETURNING t.version - n INTO v_before;
			IF FOUND THEN
				EXIT decide;
			END IF;
			IF p_expected <> -1 AND {{s}}.expected_ok(p_expected, -1) THEN
				INSERT INTO {{s}}.streams (id, version) VALUES (p_stream, n - 1) ON CONFLICT (id) DO NOTHING;
				IF FOUND THEN
					v_before := -1;
					EXIT decide;
				END IF;
			END IF;
			-- Refused, or the row changed in between: decide on the
			-- locked row.
			SELECT t.version, t.deleted, t.tombstoned INTO v_before, v_deleted, v_tomb
			FROM {{s}}.streams t WHERE t.id = p_stream FOR UPDATE;
			IF FOUND AND NOT v_tomb AND {{s}}.expected_ok(p_expected, CASE WHEN v_deleted THEN -1 ELSE v_before END) THEN
				UPDATE {{s}}.streams SET version = version + n, deleted = false WHERE id = p_stream;
				EXIT decide;
			END IF;
			IF v_tomb THEN
				status := 2; -- every append to a tombstoned stream fails, a retry too
			ELSE
				-- Refused: a retry of a recorded append, or a wrong
				-- expected version.
				SELECT c.stream, c.version INTO rec_stream, rec_version FROM {{s}}.chunks c WHERE c.first_id = p_ids[1];
				IF FOUND THEN
					status := 3;
				ELSE
					status := 1;
					out_version := CASE WHEN v_before IS NULL OR v_deleted THEN -1 ELSE v_before END;
				END IF;
			END IF;
			-- Nothing is written. The outcome may rest on writes not
			-- durable yet: a synchronous commit writes their mark.
			IF p_channel IS NOT NULL THEN
				PERFORM {{s}}.mark_durable();
			END IF;
			RETURN;
		END;
		status := 0;

		-- The head row's lock, held until the commit is visible:
		-- positions are handed out in commit order. An append that
		-- repeats a recorded one fails here, on chunks_first_id_key.
		IF p_kinds IS NULL AND cardinality(p_chunks) = 1 THEN
			-- One chunk of events of one type: the common case, in one
			-- statement with the increment.
			WITH h AS (
				UPDATE {{s}}.head SET next = next + n RETURNING next - n AS first
			)
			INSERT INTO {{s}}.chunks (position, stream, version, count, first_id, ids, type, ctype, data, metadata, tags, created, indexed)
			SELECT h.first, p_stream, v_before + 1, n, p_ids[1], p_ids, p_types[1], p_ctypes[1], p_data, p_meta, p_tags, v_now, true FROM h
			RETURNING position INTO v_first;
		ELSE
			UPDATE {{s}}.head SET next = next + n RETURNING next - n INTO v_first;
			INSERT INTO {{s}}.chunks (position, stream, version, count, first_id, ids, type, types, ctype, ctypes, data, metadata, tags, created, indexed)
			SELECT v_first + c.lo, p_stream, v_before + 1 + c.lo, c.n,
				CASE WHEN c.lo = 0 THEN p_ids[1] END,
				p_ids[c.lo + 1 : c.lo + c.n],
				CASE WHEN p_kinds IS NULL THEN p_types[1] END,
				CASE WHEN p_kinds IS NOT NULL THEN ARRAY(
					SELECT p_types[k.k] FROM unnest(p_kinds[c.lo + 1 : c.lo + c.n]) WITH ORDINALITY AS k(k, o) ORDER BY k.o) END,
				CASE WHEN p_kinds IS NULL THEN p_ctypes[1] END,
				CASE WHEN p_kinds IS NOT NULL THEN ARRAY(
					SELECT p_ctypes[k.k] FROM unnest(p_kinds[c.lo + 1 : c.lo + c.n]) WITH ORDINALITY AS k(k, o) ORDER BY k.o) END,
				p_data[c.lo + 1 : c.lo + c.n],
				p_meta[c.lo + 1 : c.lo + c.n],
				p_tags[c.lo + 1 : c.lo + c.n],
				v_now, true
			FROM (SELECT c.n, (sum(c.n) OVER (ORDER BY c.o) - c.n)::int AS lo FROM unnest(p_chunks) WITH ORDINALITY AS c(n, o)) c;
		END IF;
		v_end := v_first + n;

		-- The index, numbered in a statement that started after the head
		-- row's lock was taken (see migration 6). The first run of a key
		-- in the write (nrel 0) that starts where the key's last run
		-- ends lengthens it, found by its unique (kind, value, position);
		-- the others are new rows.
		WITH x AS (
			SELECT x.k, x.v, x.n, v_first + x.o AS p, x.c, l.position AS lpos,
				coalesce(x.n = 0 AND l.position + l.count = v_first + x.o, false) AS ext,
				coalesce(l.number + l.count, 0) + x.n AS num
			FROM unnest(p_ix_kind, p_ix_value, p_ix_nrel, p_ix_off, p_ix_count) WITH ORDINALITY AS x(k, v, n, o, c, i)
			LEFT JOIN LATERAL (SELECT r.number, r.position, r.count FROM {{s}}.index_runs r
				WHERE r.kind = x.k AND r.value = x.v ORDER BY r.number DESC LIMIT 1) l ON true
			WHERE x.i <= cardinality(p_ix_kind) - p_ix_new OR v_before = -1
		), grown AS (
			UPDATE {{s}}.index_runs r SET count = r.count + x.c
			FROM x WHERE x.ext AND r.kind = x.k AND r.value = x.v AND r.position = x.lpos
		)
		INSERT INTO {{s}}.index_runs (kind, value, number, position, count)
		SELECT x.k, x.v, x.num, x.p, x.c FROM x WHERE NOT x.ext;

		-- A synchronous append writes its durable mark, and notifies only
		-- when a listener is registered. This statement started after
		-- the head row's lock was taken, and a listener registers under
		-- that lock (listen_register): it sees every registration that
		-- committed before, and one that did not commits after this
		-- transaction, whose append its listener reads with the head.
		IF p_channel IS NOT NULL THEN
			UPDATE {{s}}.durable SET next = v_end WHERE backend = pg_backend_pid() AND next < v_end
			RETURNING EXISTS (SELECT 1 FROM {{s}}.listeners) INTO v_listened;
			IF NOT FOUND THEN
				PERFORM {{s}}.durable_at(v_end);
				v_listened := EXISTS (SELECT 1 FROM {{s}}.listeners);
			END IF;
			IF v_listened THEN
				PERFORM pg_notify(p_channel, (v_end - 1)::text);
			END IF;
		END IF;
		out_version := v_before + n;
		out_position := v_end - 1;
	END
	$fn$;

	CREATE OR REPLACE FUNCTION {{s}}.listen_register() RETURNS void LANGUAGE plpgsql AS $fn$
	BEGIN
		PERFORM pg_advisory_xact_lock({{s}}.listen_gate());
		-- Wait for the synchronous append in flight, if any; the next
		-- waits for this registration (see migration 10).
		PERFORM 1 FROM {{s}}.head FOR SHARE;
		DELETE FROM {{s}}.listeners l WHERE NOT EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.pid = l.backend);
		INSERT INTO {{s}}.listeners (backend) VALUES (pg_backend_pid()) ON CONFLICT DO NOTHING;
	END
	$fn$;
	`
