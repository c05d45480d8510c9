package pgstore

// migration7: commits that overlap, and a lean append.
//
// Until migration 6 every write held the head row's lock, which orders
// positions, through its commit's WAL flush, and queued its NOTIFY, whose
// lock PostgreSQL also holds through the flush: the writes of all the
// processes sharing a schema flushed one after the other. Now the write
// of a group of appends (append_group, append_one) commits asynchronously
// (synchronous_commit = off for its transaction alone): it still takes
// the head row's lock last and holds it until its commit is visible, so
// that positions are handed out in commit order as before, but it releases
// it without waiting for the WAL flush. The engine then makes the write
// durable in a transaction of its own, mark_durable, which commits
// synchronously: it records in the durable table, in a row of its
// connection's own, the head as it finds it, and its flush, which covers
// every commit before it in the WAL, makes every position below durable.
// The flushes of many processes overlap (PostgreSQL flushes the WAL once
// for all the commits waiting), and so do their rows' locks. A third
// transaction, notify_durable, sends the NOTIFY, asynchronously too, and
// only for a mark that was not notified yet (the notified table): the
// writes one flush made durable are announced once.
//
// A process that writes alone passes its channel to append_group or
// append_one, which then commit synchronously, writing the durable mark
// and the NOTIFY in the same transaction: one transaction instead of
// three. Its durable mark is the position after its write: every position
// below committed before the write took the head row's lock, and the
// write's own flush covers them.
//
// Readers read up to the durable mark, the largest next of the durable
// table: every position below it is committed, visible and durable. The
// events of a write that committed but whose durable mark was not written
// yet (its process died in between, say) wait for the next mark, which
// any later write, a listener's poll (Store.Notify) or an Open writes.
//
// Writes that run other statements in their transaction (batches of
// several appends, commits with projections) still commit synchronously,
// holding the head row's lock through the flush, and write their mark in
// their own transaction (durable_at).
//
// append_one is append_group for one append without a condition, the case
// of a process whose appends come one at a time: no arrays of requests,
// no loop, and its stream's row updated once.
//
// index_append, whose numbering append_group and append_one now do inline,
// and the append_group of migration 6 are dropped, so that an earlier build
// still running fails its writes instead of writing events that readers of
// this one do not see until the next mark.
const migration7 = `
	CREATE TABLE {{s}}.durable (
		backend int PRIMARY KEY,    -- pg_backend_pid() of the connection that writes the row
		next    bigint NOT NULL     -- the head it found: every position below is durable
	) WITH (fillfactor = 50);
	INSERT INTO {{s}}.durable (backend, next) SELECT 0, h.next FROM {{s}}.head h;

	-- durable_at writes p_next in the connection's row of durable, unless
	-- the row holds a later one. The first time a connection writes its
	-- row, the rows of connections that are gone and behind the mark are
	-- deleted, so that the table keeps about a row per connection. The
	-- caller's transaction must commit synchronously, after every position
	-- below p_next has committed.
	CREATE FUNCTION {{s}}.durable_at(p_next bigint) RETURNS void LANGUAGE plpgsql AS $fn$
	BEGIN
		UPDATE {{s}}.durable SET next = p_next WHERE backend = pg_backend_pid() AND next < p_next;
		IF NOT FOUND AND NOT EXISTS (SELECT 1 FROM {{s}}.durable WHERE backend = pg_backend_pid()) THEN
			DELETE FROM {{s}}.durable d
			WHERE d.next < (SELECT max(m.next) FROM {{s}}.durable m)
				AND NOT EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.pid = d.backend);
			INSERT INTO {{s}}.durable AS d (backend, next) VALUES (pg_backend_pid(), p_next)
			ON CONFLICT (backend) DO UPDATE SET next = greatest(d.next, excluded.next);
		END IF;
	END
	$fn$;

	-- mark_durable makes every committed position durable and visible to
	-- readers: when the head is ahead of the durable mark, it writes the
	-- head in the connection's row (durable_at). Its transaction must
	-- commit synchronously. It returns the durable mark.
	CREATE FUNCTION {{s}}.mark_durable() RETURNS bigint LANGUAGE plpgsql AS $fn$
	DECLARE
		v_next bigint;
		v_mark bigint;
	BEGIN
		SELECT h.next, (SELECT coalesce(max(d.next), 0) FROM {{s}}.durable d) INTO v_next, v_mark FROM {{s}}.head h;
		IF v_next <= v_mark THEN
			RETURN v_mark;
		END IF;
		UPDATE {{s}}.durable SET next = v_next WHERE backend = pg_backend_pid() AND next < v_next;
		IF NOT FOUND THEN
			PERFORM {{s}}.durable_at(v_next);
		END IF;
		RETURN v_next;
	END
	$fn$;

	-- notified holds the durable mark last notified.
	CREATE TABLE {{s}}.notified (
		only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
		next     bigint NOT NULL
	);
	INSERT INTO {{s}}.notified (next) SELECT h.next FROM {{s}}.head h;

	-- notify_durable notifies the listeners of channel p_channel of the
	-- durable mark (the last durable position), unless a notification of
	-- it or of a later one was sent already: the writes of many processes
	-- made durable by one WAL flush are announced once. Its transaction
	-- commits asynchronously: PostgreSQL holds its notification lock
	-- from the NOTIFY to the end of the commit, which is then short.
	CREATE FUNCTION {{s}}.notify_durable(p_channel text) RETURNS void LANGUAGE plpgsql AS $fn$
	DECLARE
		v_mark bigint;
		v_notified bigint;
	BEGIN
		SELECT (SELECT max(d.next) FROM {{s}}.durable d), n.next INTO v_mark, v_notified FROM {{s}}.notified n;
		IF v_notified >= v_mark THEN
			RETURN; -- notified already, by a transaction that committed
		END IF;
		PERFORM set_config('synchronous_commit', 'off', true);
		UPDATE {{s}}.notified SET next = v_mark WHERE next < v_mark;
		IF FOUND THEN
			PERFORM pg_notify(p_channel, (v_mark - 1)::text);
		END IF;
	END
	$fn$;

	DROP FUNCTION {{s}}.index_append(bigint, smallint[], text[], bigint[], bigint[], int[]);
	DROP FUNCTION {{s}}.append_group(text[], bigint[], int[], uuid[], text[], smallint[], int[], bytea[], bytea[], text[], int[], text,
		int[], smallint[], text[], int[], int[], boolean[], smallint[], text[], bigint[], bigint[], int[],
		int[], bigint[], text[], text[], boolean[]);

	-- append_one appends the events of one request (p_stream, p_expected
	-- in the numeric form; the events and their chunks as append_group
	-- takes them) without a condition. p_ix_* are the index runs of its
	-- events merged and numbered by the engine (as index_append took
	-- them: kind, value, entries of the key earlier in the write, offset,
	-- count), of which the last p_ix_new file its first event under the
	-- keys it has only when it is version 0 of its stream. The outcome is
	-- append_group's. With p_channel NULL its transaction commits
	-- asynchronously, and mark_durable must follow (see above); otherwise
	-- it writes the durable mark (for the writes before it too when it
	-- writes nothing itself) and notifies p_channel itself, and must
	-- commit synchronously: a lone process saves two transactions so.
	CREATE FUNCTION {{s}}.append_one(
		p_stream text, p_expected bigint,
		p_ids uuid[], p_types text[], p_ctypes smallint[], p_kinds int[],
		p_data bytea[], p_meta bytea[], p_tags text[], p_chunks int[],
		p_ix_kind smallint[], p_ix_value text[], p_ix_nrel bigint[], p_ix_off bigint[], p_ix_count int[], p_ix_new int,
		p_channel text,
		OUT status int, OUT out_version bigint, OUT out_position bigint, OUT rec_stream text, OUT rec_version bigint)
	LANGUAGE plpgsql
	-- Its statements' plans depend on no argument's value: planned once
	-- per connection, not at every call (as custom plans would be).
	SET plan_cache_mode = force_generic_plan
	AS $fn$
	DECLARE
		n int := cardinality(p_ids);
		v_before bigint; -- the stream's version before the append
		v_deleted boolean;
		v_tomb boolean;
		v_first bigint;
		v_now timestamptz := clock_timestamp();
	BEGIN
		IF p_channel IS NULL THEN
			PERFORM set_config('synchronous_commit', 'off', true);
		END IF;
		<<decide>>
		BEGIN
			SELECT c.stream, c.version INTO rec_stream, rec_version FROM {{s}}.chunks c WHERE c.first_id = p_ids[1];
			IF FOUND THEN
				-- A retry, unless the stream is tombstoned, which fails
				-- every append as append_group decides.
				IF EXISTS (SELECT 1 FROM {{s}}.streams t WHERE t.id = p_stream AND t.tombstoned) THEN
					status := 2;
					rec_stream := NULL;
					rec_version := NULL;
				ELSE
					status := 3;
				END IF;
				EXIT decide;
			END IF;

			-- The stream's row: created when it is missing and may be
			-- (first, when the append expects no stream), or updated at
			-- once when the expectation holds, which the update checks
			-- again on the row's last version once it has its lock.
			IF p_expected = -1 THEN
				INSERT INTO {{s}}.streams (id, version) VALUES (p_stream, n - 1) ON CONFLICT (id) DO NOTHING;
				IF FOUND THEN
					v_before := -1;
				END IF;
			END IF;
			IF v_before IS NULL THEN
				UPDATE {{s}}.streams AS t SET version = t.version + n, deleted = false
				WHERE t.id = p_stream AND NOT t.tombstoned AND {{s}}.expected_ok(p_expected, CASE WHEN t.deleted THEN -1 ELSE t.version END)
				RETURNING t.version - n INTO v_before;
				IF NOT FOUND AND p_expected <> -1 AND {{s}}.expected_ok(p_expected, -1) THEN
					INSERT INTO {{s}}.streams (id, version) VALUES (p_stream, n - 1) ON CONFLICT (id) DO NOTHING;
					IF FOUND THEN
						v_before := -1;
					END IF;
				END IF;
			END IF;
			IF v_before IS NULL THEN
				-- Refused, or the row changed in between: decide on the
				-- locked row.
				SELECT t.version, t.deleted, t.tombstoned INTO v_before, v_deleted, v_tomb
				FROM {{s}}.streams t WHERE t.id = p_stream FOR UPDATE;
				IF NOT FOUND THEN
					status := 1;
					out_version := -1;
					EXIT decide;
				ELSIF v_tomb THEN
					status := 2;
					EXIT decide;
				ELSIF NOT {{s}}.expected_ok(p_expected, CASE WHEN v_deleted THEN -1 ELSE v_before END) THEN
					status := 1;
					out_version := CASE WHEN v_deleted THEN -1 ELSE v_before END;
					EXIT decide;
				END IF;
				UPDATE {{s}}.streams SET version = version + n, deleted = false WHERE id = p_stream;
			END IF;
			status := 0;
		END;
		IF status <> 0 THEN
			-- Nothing is written. The outcome may rest on writes not
			-- durable yet: a synchronous commit writes their mark.
			IF p_channel IS NOT NULL THEN
				PERFORM {{s}}.mark_durable();
			END IF;
			RETURN;
		END IF;

		-- The head row's lock, held until the commit is visible:
		-- positions are handed out in commit order.
		UPDATE {{s}}.head SET next = next + n RETURNING next - n INTO v_first;
		IF p_kinds IS NULL AND cardinality(p_chunks) = 1 THEN
			-- One chunk of events of one type: the common case, in the
			-- simplest statement.
			INSERT INTO {{s}}.chunks (position, stream, version, count, first_id, ids, type, ctype, data, metadata, tags, created, indexed)
			VALUES (v_first, p_stream, v_before + 1, n, p_ids[1], p_ids, p_types[1], p_ctypes[1], p_data, p_meta, p_tags, v_now, true);
		ELSE
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

		-- The index, numbered in a statement that started after the head
		-- row's lock was taken (see migration 6).
		INSERT INTO {{s}}.index_runs (kind, value, number, position, count)
		SELECT x.k, x.v,
			coalesce((SELECT r.number + r.count FROM {{s}}.index_runs r
				WHERE r.kind = x.k AND r.value = x.v ORDER BY r.number DESC LIMIT 1), 0) + x.n,
			v_first + x.o, x.c
		FROM unnest(p_ix_kind, p_ix_value, p_ix_nrel, p_ix_off, p_ix_count) WITH ORDINALITY AS x(k, v, n, o, c, i)
		WHERE x.i <= cardinality(p_ix_kind) - p_ix_new OR v_before = -1;

		IF p_channel IS NOT NULL THEN
			PERFORM {{s}}.durable_at(v_first + n), pg_notify(p_channel, (v_first + n - 1)::text);
		END IF;
		out_version := v_before + n;
		out_position := v_first + n - 1;
	END
	$fn$;

	-- append_group as in migration 6, with index_append inline, and
	-- committing as append_one does: asynchronously when p_channel is
	-- NULL (the NOTIFY is then notify_durable's), otherwise writing the
	-- durable mark and notifying p_channel itself.
	CREATE FUNCTION {{s}}.append_group(
		p_streams text[], p_expected bigint[], p_counts int[],
		p_ids uuid[], p_types text[], p_ctypes smallint[], p_kinds int[],
		p_data bytea[], p_meta bytea[], p_tags text[], p_chunks int[],
		p_ix_req int[], p_ix_kind smallint[], p_ix_value text[], p_ix_off int[], p_ix_count int[], p_ix_first boolean[],
		p_fx_kind smallint[], p_fx_value text[], p_fx_nrel bigint[], p_fx_off bigint[], p_fx_count int[],
		p_q_req int[], p_q_after bigint[], p_q_types text[], p_q_tags text[], p_q_clash boolean[],
		p_channel text)
	RETURNS TABLE (status int, out_version bigint, out_position bigint, rec_stream text, rec_version bigint)
	LANGUAGE plpgsql AS $fn$
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
			UPDATE {{s}}.streams AS t SET version = u.v, deleted = false
			FROM unnest(l_ids, l_versions, l_touched) AS u(id, v, touched)
			WHERE t.id = u.id AND u.touched;
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
	`
