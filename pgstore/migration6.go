package pgstore

// migration6: the index (cairn.IndexReader) and append conditions
// (cairn.Querier).
//
// index_runs holds the index's lists run-length encoded: a row is a run of
// entries of one key (kind, value) at consecutive numbers and consecutive
// positions. The engine computes every event's keys in Go (cairn.IndexKeys)
// and sends them as runs, merged where they meet and numbered within the
// write; index_append places them at the write's positions and numbers
// them after the key's last entry (index_merge does the merging in the
// schema, for a group whose appends are not all written). It runs under
// the head row's lock, in a statement that starts after the lock was
// taken, so that it sees every entry committed before: the numbers of a
// key are given in position order, without gaps.
// The primary key (kind, value, number) and the unique (kind, value,
// position) assert it.
//
// query_scans chooses, for each item of a query, the lists to read: the
// list of its tag with the fewest entries, or the lists of its types,
// whichever have fewer. item_matches is the rule an event must then pass;
// conditions_first finds, for the conditions of a write, the first event
// that fails each, in one statement, which is how append conditions are
// checked: by append_group, and by check_conditions for the engine's other
// writes, both after the head row's lock is taken.
//
// append_group, otherwise as in migration 5, takes the index runs of its
// requests and their conditions. A group with conditions takes the head
// row's lock before it checks its requests (after the streams' locks, the
// order every write takes them in), checks them against the events
// committed before, and a request whose query may match the events of a
// request written before it in the group against those too; a request
// whose condition fails gets status 4 with the first conflicting
// position. The migration 5
// function is dropped, so that an earlier build still running fails its
// appends instead of writing events without their entries; the chunks'
// new column indexed, NOT NULL without a default, does the same for its
// other writes.
//
// The events already stored are filed by the engine, in Go, right after
// this migration, in the same transaction (see backfillIndex).
const migration6 = `
	ALTER TABLE {{s}}.chunks ADD COLUMN indexed boolean NOT NULL DEFAULT true;
	ALTER TABLE {{s}}.chunks ALTER COLUMN indexed DROP DEFAULT;

	CREATE TABLE {{s}}.index_runs (
		kind     smallint NOT NULL,             -- cairn.IndexKind
		value    text COLLATE "C" NOT NULL,     -- the key's value (a digest when long, see keyValue)
		number   bigint NOT NULL,               -- of the first entry
		position bigint NOT NULL,               -- of the first entry's event
		count    int NOT NULL,                  -- entries, at consecutive numbers and positions
		PRIMARY KEY (kind, value, number),
		CONSTRAINT index_runs_position_key UNIQUE (kind, value, position)
	);

	-- index_append files the runs (p_kinds, p_values, p_nrel, p_offs,
	-- p_counts) of a write whose first event is at position p_first: a run
	-- files the events p_first + off … under its key, numbered after the
	-- key's last entry and the nrel entries of the key earlier in the write.
	-- The engine merges the runs that meet and counts nrel. It must run
	-- under the head row's lock, in a statement that started after the lock
	-- was taken.
	CREATE FUNCTION {{s}}.index_append(p_first bigint, p_kinds smallint[], p_values text[], p_nrel bigint[], p_offs bigint[], p_counts int[])
	RETURNS void LANGUAGE plpgsql AS $fn$
	BEGIN
		INSERT INTO {{s}}.index_runs (kind, value, number, position, count)
		SELECT x.k, x.v,
			coalesce((SELECT r.number + r.count FROM {{s}}.index_runs r
				WHERE r.kind = x.k AND r.value = x.v ORDER BY r.number DESC LIMIT 1), 0) + x.n,
			p_first + x.o, x.c
		FROM unnest(p_kinds, p_values, p_nrel, p_offs, p_counts) AS x(k, v, n, o, c);
	END
	$fn$;

	-- index_merge is index_append for runs that the engine could not merge
	-- and number (p_kinds, p_values, p_offs, p_counts): those of the appends
	-- of a group that were written, which append_group alone knows. Runs of
	-- a key that meet are merged, and numbered in position order.
	CREATE FUNCTION {{s}}.index_merge(p_first bigint, p_kinds smallint[], p_values text[], p_offs bigint[], p_counts int[])
	RETURNS void LANGUAGE plpgsql AS $fn$
	BEGIN
		INSERT INTO {{s}}.index_runs (kind, value, number, position, count)
		SELECT m.kind, m.value,
			coalesce((SELECT r.number + r.count FROM {{s}}.index_runs r
				WHERE r.kind = m.kind AND r.value = m.value ORDER BY r.number DESC LIMIT 1), 0)
				+ sum(m.count) OVER (PARTITION BY m.kind, m.value ORDER BY m.position) - m.count,
			m.position, m.count
		FROM (
			SELECT u.kind, u.value, min(u.position) AS position, sum(u.count)::int AS count
			FROM (
				SELECT u.*, u.position + u.count - sum(u.count) OVER (PARTITION BY u.kind, u.value ORDER BY u.position) AS island
				FROM (SELECT x.k, x.v, p_first + x.o, x.c FROM unnest(p_kinds, p_values, p_offs, p_counts) AS x(k, v, o, c))
					AS u(kind, value, position, count)
			) u
			GROUP BY u.kind, u.value, u.island
		) m;
	END
	$fn$;

	-- item_matches is the rule of a query item (i_types and i_tags joined
	-- by U+001F, NULL for none): the event's type is one of the types, and
	-- it carries every tag. An event of a system stream has no type in the
	-- index, and matches no item with types.
	CREATE FUNCTION {{s}}.item_matches(p_stream text, p_type text, p_tags text, i_types text, i_tags text) RETURNS boolean
	LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $fn$
		SELECT (i_types IS NULL OR (p_type = ANY (string_to_array(i_types, E'\x1f')) AND left(p_stream, 1) <> '$'))
			AND (i_tags IS NULL OR coalesce(string_to_array(p_tags, E'\x1f') @> string_to_array(i_tags, E'\x1f'), false))
	$fn$;

	-- query_scans returns the lists to read for a query whose items all
	-- have types or tags (p_types and p_tags, one element per item, joined
	-- by U+001F, NULL for none): for each item, the list of one of its tags
	-- or the lists of its types, whichever have the fewest entries. Every
	-- event that matches the item is in them.
	CREATE FUNCTION {{s}}.query_scans(p_types text[], p_tags text[]) RETURNS TABLE (item int, kind smallint, value text)
	LANGUAGE sql STABLE ROWS 2 AS $fn$
		WITH i AS (
			SELECT i.types, i.tags, i.item::int FROM unnest(p_types, p_tags) WITH ORDINALITY AS i(types, tags, item)
		), c AS (
			SELECT i.item, 3::smallint AS kind, ARRAY[t.t] AS vals, coalesce((SELECT r.number + r.count FROM {{s}}.index_runs r
				WHERE r.kind = 3 AND r.value = t.t ORDER BY r.number DESC LIMIT 1), 0) AS len
			FROM i CROSS JOIN LATERAL unnest(string_to_array(i.tags, E'\x1f')) AS t(t)
			UNION ALL
			SELECT i.item, 2::smallint, array_agg(DISTINCT t.t), sum(coalesce((SELECT r.number + r.count FROM {{s}}.index_runs r
				WHERE r.kind = 2 AND r.value = t.t ORDER BY r.number DESC LIMIT 1), 0))
			FROM i CROSS JOIN LATERAL unnest(string_to_array(i.types, E'\x1f')) AS t(t)
			GROUP BY i.item
		), best AS (
			SELECT DISTINCT ON (c.item) c.item, c.kind, c.vals FROM c ORDER BY c.item, c.len, c.kind DESC
		)
		SELECT b.item, b.kind, v.v FROM best b CROSS JOIN LATERAL unnest(b.vals) AS v(v)
	$fn$;

	-- conditions_first returns, for each request whose condition fails,
	-- the position of the first event after its p_after and before
	-- p_before that matches its query. The arrays have an element per item
	-- of the requests' queries: its request, the request's After (-1 for
	-- none), its types and its tags (joined by U+001F, NULL for none; an
	-- item with neither matches every event). Each item reads the lists
	-- query_scans chooses for it, or the log when it matches every event,
	-- up to its first match: one statement for all the conditions of a
	-- write.
	CREATE FUNCTION {{s}}.conditions_first(p_reqs int[], p_after bigint[], p_types text[], p_tags text[], p_before bigint)
	RETURNS TABLE (req int, pos bigint) LANGUAGE plpgsql STABLE AS $fn$
	BEGIN
		RETURN QUERY
		SELECT q.req, min(f.pos)
		FROM unnest(p_reqs, p_after, p_types, p_tags) AS q(req, after, types, tags)
		CROSS JOIN LATERAL (
			(SELECT greatest(c.position, q.after + 1) AS pos FROM {{s}}.chunks c
				WHERE q.types IS NULL AND q.tags IS NULL
					AND c.position >= coalesce((SELECT max(c2.position) FROM {{s}}.chunks c2
						WHERE c2.position <= q.after + 1), q.after + 1)
					AND c.position + c.count > q.after + 1 AND c.position < p_before
				ORDER BY c.position LIMIT 1)
			UNION ALL
			(SELECT m.pos FROM {{s}}.query_scans(ARRAY[q.types], ARRAY[q.tags]) l
				CROSS JOIN LATERAL (
					SELECT g.p AS pos
					FROM {{s}}.index_runs e
					CROSS JOIN LATERAL (
						(SELECT c.position, c.count, c.stream, c.type, c.types, c.tags FROM {{s}}.chunks c
							WHERE c.position <= greatest(e.position, q.after + 1) ORDER BY c.position DESC LIMIT 1)
						UNION ALL
						(SELECT c.position, c.count, c.stream, c.type, c.types, c.tags FROM {{s}}.chunks c
							WHERE least(e.position + e.count, p_before) > greatest(e.position, q.after + 1) + 1
								AND c.position > greatest(e.position, q.after + 1)
								AND c.position < least(e.position + e.count, p_before))
					) c
					CROSS JOIN LATERAL generate_series(greatest(e.position, c.position, q.after + 1),
						least(e.position + e.count, c.position + c.count, p_before) - 1) AS g(p)
					CROSS JOIN LATERAL (SELECT (g.p - c.position + 1)::int AS k) k
					WHERE e.kind = l.kind AND e.value = l.value
						AND e.position >= coalesce((SELECT max(e2.position) FROM {{s}}.index_runs e2
							WHERE e2.kind = l.kind AND e2.value = l.value AND e2.position <= q.after + 1), q.after + 1)
						AND e.position < p_before
						AND {{s}}.item_matches(c.stream, coalesce(c.types[k.k], c.type), c.tags[k.k], q.types, q.tags)
					ORDER BY e.position, g.p
					LIMIT 1
				) m
				WHERE q.types IS NOT NULL OR q.tags IS NOT NULL)
		) f
		WHERE q.after + 1 < p_before
		GROUP BY q.req;
	END
	$fn$;

	-- check_conditions checks the conditions of a write that holds the
	-- head row's lock, taken by an earlier statement, and whose events
	-- start at position p_before (conditions_first's arguments). When any
	-- fails it raises SQLSTATE CA001 with the detail "request:position ..."
	-- for each, so that the transaction writes nothing.
	CREATE FUNCTION {{s}}.check_conditions(p_before bigint, p_reqs int[], p_after bigint[], p_types text[], p_tags text[])
	RETURNS void LANGUAGE plpgsql AS $fn$
	DECLARE
		v_failed text;
	BEGIN
		IF current_setting('transaction_isolation') <> 'read committed' THEN
			RAISE EXCEPTION 'cairn: append conditions are checked at READ COMMITTED, not %', current_setting('transaction_isolation');
		END IF;
		SELECT string_agg(f.req || ':' || f.pos, ' ') INTO v_failed
		FROM {{s}}.conditions_first(p_reqs, p_after, p_types, p_tags, p_before) f;
		IF v_failed IS NOT NULL THEN
			RAISE EXCEPTION 'append condition failed' USING ERRCODE = 'CA001', DETAIL = v_failed;
		END IF;
	END
	$fn$;

	DROP FUNCTION {{s}}.append_group(text[], bigint[], int[], uuid[], text[], smallint[], int[], bytea[], bytea[], text[], int[], text);

	-- append_group as in migration 5, and: p_ix_* are the index runs of the
	-- requests (request, 1-based; kind; value; offset among the request's
	-- events; count; whether it files the first event only at version 0),
	-- p_fx_* the same runs merged and numbered by the engine for the case
	-- where every request is written and none creates its stream (see
	-- index_append), which is then filed as it is.
	-- p_q_*, when not NULL, are the items of the requests' conditions, as
	-- conditions_first takes them (requests 1-based), and p_q_clash says
	-- for each request whether its query may match the events of a request
	-- before it in the group, which it is then checked against too.
	CREATE FUNCTION {{s}}.append_group(
		p_streams text[], p_expected bigint[], p_counts int[],
		p_ids uuid[], p_types text[], p_ctypes smallint[], p_kinds int[],
		p_data bytea[], p_meta bytea[], p_tags text[], p_chunks int[], p_channel text,
		p_ix_req int[], p_ix_kind smallint[], p_ix_value text[], p_ix_off int[], p_ix_count int[], p_ix_first boolean[],
		p_fx_kind smallint[], p_fx_value text[], p_fx_nrel bigint[], p_fx_off bigint[], p_fx_count int[],
		p_q_req int[], p_q_after bigint[], p_q_types text[], p_q_tags text[], p_q_clash boolean[])
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
			-- The head row's lock, held until COMMIT: positions are
			-- handed out in commit order.
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
				PERFORM {{s}}.index_append(v_first, p_fx_kind, p_fx_value, p_fx_nrel, p_fx_off, p_fx_count);
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
			PERFORM pg_notify(p_channel, (v_first + v_total - 1)::text);
		END IF;

		RETURN QUERY SELECT r_status[x], r_version[x], coalesce(v_first + r_end[x] - 1, r_conflict[x]), r_stream[x], r_rec[x]
			FROM generate_series(1, n) AS x;
	END
	$fn$;
	`
