package pgstore

// migration8: a leaner append_one, and index runs that grow in place.
//
// append_one, the write of a lone append, cost about three times a plain
// INSERT of the server's CPU, most of it (measured by taking its
// statements out one at a time) in filing its events in the index: a new
// row in index_runs, with two index entries, for every key of every
// append, although the appends of one writer, or of many writers of one
// category and type, follow one another at consecutive positions. Now a
// run of a write that continues the last run of its key (the key's next
// number, at the next position) lengthens that run, an update of its
// count that changes no indexed column and so adds no index entry,
// instead of adding a row; the write's other runs are inserted as before.
// A run therefore no longer belongs to one write, and may end in entries
// not durable yet: every reader of runs (Store.ReadIndex, Store.ReadQuery)
// cuts a run at the durable mark. The numbers and positions of every
// entry are those it had before, and the primary key and the unique
// (kind, value, position) hold as before.
//
// The rest of append_one, the same outcomes in fewer statements:
//
//   - the lookup of the append's first event id (retry detection) is made
//     only when the stream refuses the append; an append the stream
//     accepts that repeats a recorded one fails on the chunks' unique
//     first id (chunks_first_id_key), and the engine then runs it step by
//     step, which tells a retry from a duplicate;
//   - the head row's increment and the insert of a one-chunk append are one
//     statement;
//   - a synchronous append writes its durable mark with an update of its
//     connection's row, calling durable_at only for its first.
//
// Builds before this one read a lengthened run whole, entries not durable
// yet included: stop them before migrating, as for migration 7.
const migration8 = `
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

		IF p_channel IS NOT NULL THEN
			UPDATE {{s}}.durable SET next = v_end WHERE backend = pg_backend_pid() AND next < v_end;
			IF NOT FOUND THEN
				PERFORM {{s}}.durable_at(v_end);
			END IF;
			PERFORM pg_notify(p_channel, (v_end - 1)::text);
		END IF;
		out_version := v_before + n;
		out_position := v_end - 1;
	END
	$fn$;
	`
