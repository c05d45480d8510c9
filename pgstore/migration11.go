package pgstore

// migration11: the write path's plans reach the growing tables through
// their keys, whatever the statistics say.
//
// A plpgsql function plans each of its statements when a connection first
// runs it, and keeps the plan for the connection's life, until a table's
// statistics change (ANALYZE, autovacuum). Plans made while index_runs,
// streams and chunks held a page each, with statistics that said so, read
// them whole (a sequential scan, a hash join or a nested loop over the whole
// table, being the cheapest then); kept while the tables grow, they read them
// whole at every append. Among them: append_group's lookup of each append's
// first event id in chunks (its retry check), its update of the streams'
// rows, its conditions' reads of index_runs, and append_one's lookup and
// lengthening of each key's last run. A store analysed while small, then
// grown by a lone writer filing a new tag at each append, took 0.6 ms an
// append at first and 5.4 ms after 14,000 appends, until autovacuum
// analysed index_runs again and the plans were made anew (see
// docs/benchmarks.md).
//
// The functions of the write path now run with the planner's sequential
// and bitmap scans off, so that each statement looks the tables up by an
// index however small they look: append_one and append_group, and the
// functions append_group calls that read the index (conditions_first,
// check_conditions) or file it (index_merge), each with its own settings,
// as a function's plans are kept for every caller. JIT compilation is off
// in them too: a plan that must scan a one-row table (head) is costed as
// disabled, which would otherwise call the JIT compiler in.
//
// Two statements are written anew so that no join order can read a table
// whole:
//
//   - append_group updates the streams' rows it wrote looked up by their
//     ids (id = ANY), and is otherwise migration 7's;
//   - append_one lengthened a key's last run with an UPDATE joined to the
//     write's keys; it now files a run that continues the key's last one
//     as an INSERT … ON CONFLICT on the run's primary key, which
//     PostgreSQL checks through that key's index, and adds the count
//     there. The conflict is taken only by the run it continues (the same
//     first position); any other leaves the row unfiled, and the function
//     then fails rather than file less than it was given. append_one is
//     otherwise migration 10's.
const migration11 = `
	CREATE OR REPLACE FUNCTION {{s}}.append_one(
		p_stream text, p_expected bigint,
		p_ids uuid[], p_types text[], p_ctypes smallint[], p_kinds int[],
		p_data bytea[], p_meta bytea[], p_tags text[], p_chunks int[],
		p_ix_kind smallint[], p_ix_value text[], p_ix_nrel bigint[], p_ix_off bigint[], p_ix_count int[], p_ix_new int,
		p_channel text,
		OUT status int, OUT out_version bigint, OUT out_position bigint, OUT rec_stream text, OUT rec_version bigint)
	LANGUAGE plpgsql
	SET plan_cache_mode = force_generic_plan
	SET enable_seqscan = off
	SET enable_bitmapscan = off
	SET jit = off
	AS $fn$
	DECLARE
		n int := cardinality(p_ids);
		v_before bigint; -- the stream's version before the append
		v_deleted boolean;
		v_tomb boolean;
		v_first bigint;
		v_end bigint;
		v_filed bigint;
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
		-- ends lengthens it: filed at that run's number and position, it
		-- meets the run on the primary key, and adds its count there. The
		-- others are new rows.
		INSERT INTO {{s}}.index_runs AS r (kind, value, number, position, count)
		SELECT x.k, x.v, CASE WHEN x.ext THEN x.lnum ELSE x.num END, CASE WHEN x.ext THEN x.lpos ELSE x.p END, x.c
		FROM (
			SELECT x.k, x.v, x.c, v_first + x.o AS p, l.number AS lnum, l.position AS lpos,
				coalesce(x.n = 0 AND l.position + l.count = v_first + x.o, false) AS ext,
				coalesce(l.number + l.count, 0) + x.n AS num
			FROM unnest(p_ix_kind, p_ix_value, p_ix_nrel, p_ix_off, p_ix_count) WITH ORDINALITY AS x(k, v, n, o, c, i)
			LEFT JOIN LATERAL (SELECT r.number, r.position, r.count FROM {{s}}.index_runs r
				WHERE r.kind = x.k AND r.value = x.v ORDER BY r.number DESC LIMIT 1) l ON true
			WHERE x.i <= cardinality(p_ix_kind) - p_ix_new OR v_before = -1
		) x
		ON CONFLICT (kind, value, number) DO UPDATE SET count = r.count + excluded.count
		WHERE r.position = excluded.position;
		GET DIAGNOSTICS v_filed = ROW_COUNT;
		IF v_filed <> coalesce(cardinality(p_ix_kind), 0) - (CASE WHEN v_before = -1 THEN 0 ELSE p_ix_new END) THEN
			RAISE EXCEPTION 'cairn: % of the % runs of the append at position % filed: a run met another at its number', v_filed,
				coalesce(cardinality(p_ix_kind), 0) - (CASE WHEN v_before = -1 THEN 0 ELSE p_ix_new END), v_first;
		END IF;

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

	CREATE OR REPLACE FUNCTION {{s}}.append_group(
		p_streams text[], p_expected bigint[], p_counts int[],
		p_ids uuid[], p_types text[], p_ctypes smallint[], p_kinds int[],
		p_data bytea[], p_meta bytea[], p_tags text[], p_chunks int[],
		p_ix_req int[], p_ix_kind smallint[], p_ix_value text[], p_ix_off int[], p_ix_count int[], p_ix_first boolean[],
		p_fx_kind smallint[], p_fx_value text[], p_fx_nrel bigint[], p_fx_off bigint[], p_fx_count int[],
		p_q_req int[], p_q_after bigint[], p_q_types text[], p_q_tags text[], p_q_clash boolean[],
		p_channel text)
	RETURNS TABLE (status int, out_version bigint, out_position bigint, rec_stream text, rec_version bigint)
	LANGUAGE plpgsql
	SET enable_seqscan = off
	SET enable_bitmapscan = off
	SET jit = off
	AS $fn$
	DECLARE
		n int := cardinality(p_streams);
		l_ids text[];
		l_versions bigint[];
		l_gone boolean[];
		l_tomb boolean[];
		l_touched boolean[];
		r_status int[] := array_fill(0, ARRAY[n]);
		r_version bigint[] := array_fill(NULL::bigint, ARRAY[n]);
		r_end bigint[] := array_fill(NULL::bigint, ARRAY[n]);
		r_stream text[] := array_fill(NULL::text, ARRAY[n]);
		r_rec bigint[] := array_fill(NULL::bigint, ARRAY[n]);
		r_conflict bigint[] := array_fill(NULL::bigint, ARRAY[n]);
		-- per request: whether it has a condition, and the first event
		-- committed before the group that fails it
		c_has boolean[] := array_fill(false, ARRAY[n]);
		c_pos bigint[] := array_fill(NULL::bigint, ARRAY[n]);
		-- the accepted requests: index, offset of their events in the
		-- arrays, version before them, offset of their positions
		a_req int[] := '{}';
		a_off int[] := '{}';
		a_base bigint[] := '{}';
		a_rel bigint[] := '{}';
		v_off int := 0;
		v_total bigint := 0;
		v_first bigint;
		v_head bigint;
		v_pos bigint;
		v_ok boolean;
		v_new boolean := false;
		v_now timestamptz := clock_timestamp();
		i int;
		j int;
		cnt int;
		cur bigint;
		exp bigint;
		rs text;
		rv bigint;
		v_type text;
		v_ctype smallint;
		m_kind smallint[];
		m_value text[];
		m_off bigint[];
		m_count int[];
	BEGIN
		IF p_channel IS NULL THEN
			PERFORM set_config('synchronous_commit', 'off', true);
		END IF;
		WITH l AS (
			INSERT INTO {{s}}.streams AS t (id)
			SELECT DISTINCT u COLLATE "C" FROM unnest(p_streams) AS u ORDER BY 1
			ON CONFLICT (id) DO UPDATE SET id = t.id
			RETURNING t.id, t.version, t.deleted, t.tombstoned
		)
		SELECT array_agg(l.id), array_agg(l.version), array_agg(l.deleted OR l.tombstoned), array_agg(l.tombstoned), array_agg(false)
		INTO l_ids, l_versions, l_gone, l_tomb, l_touched FROM l;

		IF p_q_req IS NOT NULL THEN
			-- Conditions are checked against every event committed
			-- before: take the head row's lock now, after the streams'.
			IF current_setting('transaction_isolation') <> 'read committed' THEN
				RAISE EXCEPTION 'cairn: append conditions are checked at READ COMMITTED, not %', current_setting('transaction_isolation');
			END IF;
			SELECT h.next INTO v_head FROM {{s}}.head h FOR UPDATE;
			FOR i IN 1 .. cardinality(p_q_req) LOOP
				c_has[p_q_req[i]] := true;
			END LOOP;
			FOR i, v_pos IN SELECT f.req, f.pos FROM {{s}}.conditions_first(p_q_req, p_q_after, p_q_types, p_q_tags, v_head) f LOOP
				c_pos[i] := v_pos;
			END LOOP;
		END IF;

		FOR i IN 1 .. n LOOP
			cnt := p_counts[i];
			j := array_position(l_ids, p_streams[i]);
			IF l_tomb[j] THEN
				r_status[i] := 2;
			ELSE
				SELECT c.stream, c.version INTO rs, rv FROM {{s}}.chunks c WHERE c.first_id = p_ids[v_off + 1];
				IF FOUND THEN
					r_status[i] := 3;
					r_stream[i] := rs;
					r_rec[i] := rv;
				ELSE
					cur := CASE WHEN l_gone[j] THEN -1 ELSE l_versions[j] END;
					exp := p_expected[i];
					v_ok := {{s}}.expected_ok(exp, cur);
					v_pos := c_pos[i];
					IF v_ok AND c_has[i] AND v_pos IS NULL AND p_q_clash[i] THEN
						-- The events of the requests written before it in
						-- the group, at the positions they will have.
						SELECT min(v_head + a.rel + e.n - a.off - 1) INTO v_pos
						FROM unnest(a_req, a_off, a_rel) AS a(req, off, rel)
						CROSS JOIN LATERAL generate_series(a.off + 1, a.off + p_counts[a.req]) AS e(n)
						JOIN unnest(p_q_req, p_q_after, p_q_types, p_q_tags) AS q(req, after, types, tags)
							ON q.req = i AND v_head + a.rel + e.n - a.off - 1 > q.after
						WHERE {{s}}.item_matches(p_streams[a.req], p_types[coalesce(p_kinds[e.n], 1)], p_tags[e.n], q.types, q.tags);
					END IF;
					IF NOT v_ok THEN
						r_status[i] := 1;
						r_version[i] := cur;
					ELSIF c_has[i] AND v_pos IS NOT NULL THEN
						r_status[i] := 4;
						r_conflict[i] := v_pos;
					ELSE
						a_req := a_req || i;
						a_off := a_off || v_off;
						a_base := a_base || l_versions[j];
						a_rel := a_rel || v_total;
						v_new := v_new OR l_versions[j] = -1;
						l_versions[j] := l_versions[j] + cnt;
						l_gone[j] := false;
						l_touched[j] := true;
						v_total := v_total + cnt;
						r_version[i] := l_versions[j];
						r_end[i] := v_total;
					END IF;
				END IF;
			END IF;
			v_off := v_off + cnt;
		END LOOP;

		IF v_total > 0 THEN
			-- The rows looked up by their keys (id = ANY), whichever way
			-- the planner joins them to the new versions.
			UPDATE {{s}}.streams AS t SET version = u.v, deleted = false
			FROM unnest(l_ids, l_versions, l_touched) AS u(id, v, touched)
			WHERE t.id = ANY (l_ids) AND t.id = u.id AND u.touched;
			-- The head row's lock, held until the commit is visible:
			-- positions are handed out in commit order.
			UPDATE {{s}}.head SET next = next + v_total RETURNING next - v_total INTO v_first;
			v_type := p_types[1];
			v_ctype := p_ctypes[1];
			INSERT INTO {{s}}.chunks (position, stream, version, count, first_id, ids, type, types, ctype, ctypes, data, metadata, tags, created, indexed)
			SELECT v_first + a.rel + c.lo - a.off, a.stream, a.base + 1 + c.lo - a.off, c.n,
				CASE WHEN c.lo = a.off THEN p_ids[c.lo + 1] END,
				p_ids[c.lo + 1 : c.lo + c.n],
				CASE WHEN p_kinds IS NULL THEN v_type END,
				CASE WHEN p_kinds IS NOT NULL THEN ARRAY(
					SELECT p_types[k.k] FROM unnest(p_kinds[c.lo + 1 : c.lo + c.n]) WITH ORDINALITY AS k(k, o) ORDER BY k.o) END,
				CASE WHEN p_kinds IS NULL THEN v_ctype END,
				CASE WHEN p_kinds IS NOT NULL THEN ARRAY(
					SELECT p_ctypes[k.k] FROM unnest(p_kinds[c.lo + 1 : c.lo + c.n]) WITH ORDINALITY AS k(k, o) ORDER BY k.o) END,
				p_data[c.lo + 1 : c.lo + c.n],
				p_meta[c.lo + 1 : c.lo + c.n],
				p_tags[c.lo + 1 : c.lo + c.n],
				v_now, true
			FROM (SELECT c.n, (sum(c.n) OVER (ORDER BY c.o) - c.n)::int AS lo FROM unnest(p_chunks) WITH ORDINALITY AS c(n, o)) c
			JOIN (SELECT a.*, p_streams[a.req] AS stream, a.off + p_counts[a.req] AS hi
				FROM unnest(a_req, a_off, a_base, a_rel) AS a(req, off, base, rel)) a
				ON c.lo >= a.off AND c.lo < a.hi;
			IF cardinality(a_req) = n AND NOT v_new THEN
				-- Every request is written, to streams that exist: the
				-- runs as the engine merged and numbered them.
				INSERT INTO {{s}}.index_runs (kind, value, number, position, count)
				SELECT x.k, x.v,
					coalesce((SELECT r.number + r.count FROM {{s}}.index_runs r
						WHERE r.kind = x.k AND r.value = x.v ORDER BY r.number DESC LIMIT 1), 0) + x.n,
					v_first + x.o, x.c
				FROM unnest(p_fx_kind, p_fx_value, p_fx_nrel, p_fx_off, p_fx_count) AS x(k, v, n, o, c);
			ELSE
				-- The runs of the written requests, at their positions;
				-- the stream lists' only for a stream's first event.
				SELECT array_agg(x.kind), array_agg(x.value), array_agg(a.rel + x.off), array_agg(x.count)
				INTO m_kind, m_value, m_off, m_count
				FROM unnest(p_ix_req, p_ix_kind, p_ix_value, p_ix_off, p_ix_count, p_ix_first) AS x(req, kind, value, off, count, first)
				JOIN unnest(a_req, a_base, a_rel) AS a(req, base, rel) ON a.req = x.req
				WHERE NOT x.first OR a.base = -1;
				IF m_kind IS NOT NULL THEN
					PERFORM {{s}}.index_merge(v_first, m_kind, m_value, m_off, m_count);
				END IF;
			END IF;
			IF p_channel IS NOT NULL THEN
				PERFORM {{s}}.durable_at(v_first + v_total), pg_notify(p_channel, (v_first + v_total - 1)::text);
			END IF;
		ELSIF p_channel IS NOT NULL THEN
			-- Nothing is written. The outcomes may rest on writes not
			-- durable yet: a synchronous commit writes their mark.
			PERFORM {{s}}.mark_durable();
		END IF;

		RETURN QUERY SELECT r_status[x], r_version[x], coalesce(v_first + r_end[x] - 1, r_conflict[x]), r_stream[x], r_rec[x]
			FROM generate_series(1, n) AS x;
	END
	$fn$;

	ALTER FUNCTION {{s}}.conditions_first(int[], bigint[], text[], text[], bigint)
		SET enable_seqscan = off SET enable_bitmapscan = off SET jit = off;
	ALTER FUNCTION {{s}}.check_conditions(bigint, int[], bigint[], text[], text[])
		SET enable_seqscan = off SET enable_bitmapscan = off SET jit = off;
	ALTER FUNCTION {{s}}.index_merge(bigint, smallint[], text[], bigint[], int[])
		SET enable_seqscan = off SET enable_bitmapscan = off SET jit = off;
	`
