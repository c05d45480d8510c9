package pgstore

// migration4: chunks. The events of an append are stored in rows of up to about
// 8000 bytes, each a run of consecutive versions and positions whose
// columns are arrays (one element per event), so that an append of
// 1000 small events inserts a few dozen rows and index entries instead
// of a thousand. The table's toast_tuple_target keeps such rows whole
// in the table's pages. A chunk row is keyed by its first position,
// and by its stream and first version for stream reads; the first chunk
// of an append carries the append's first event id, unique, for retry
// detection. Existing events become chunks of one event each; the runs
// table, whose work the chunks do, goes.
const migration4 = `
	CREATE TABLE {{s}}.chunks (
		position bigint PRIMARY KEY, -- of the first event
		stream   text COLLATE "C" NOT NULL,
		version  bigint NOT NULL,    -- of the first event
		count    int NOT NULL,
		first_id uuid,               -- the id of its append's first event, on the append's first chunk; NULL once compacted
		ids      uuid[] NOT NULL,
		type     text,               -- the type of every event, or NULL and types
		types    text[],
		ctype    smallint,           -- the content type of every event, or NULL and ctypes
		ctypes   smallint[],
		data     bytea[] NOT NULL,
		metadata bytea[],            -- NULL when no event has any
		tags     text[],             -- per event, joined by U+001F, NULL for none; NULL when no event has any
		created  timestamptz NOT NULL,
		CONSTRAINT chunks_stream_version_key UNIQUE (stream, version)
	) WITH (toast_tuple_target = 8160);
	CREATE UNIQUE INDEX chunks_first_id_key ON {{s}}.chunks (first_id) WHERE first_id IS NOT NULL;
	INSERT INTO {{s}}.chunks (position, stream, version, count, first_id, ids, type, ctype, data, metadata, tags, created)
	SELECT e.position, e.stream, e.version, 1, r.id, ARRAY[e.id], e.type, e.content_type, ARRAY[e.data],
		CASE WHEN e.metadata IS NULL THEN NULL ELSE ARRAY[e.metadata] END,
		CASE WHEN e.tags IS NULL THEN NULL ELSE ARRAY[array_to_string(e.tags, E'\x1f')] END,
		e.created
	FROM {{s}}.events e LEFT JOIN {{s}}.runs r ON r.stream = e.stream AND r.version = e.version AND r.id = e.id;
	DROP FUNCTION {{s}}.append_group(text[], bigint[], int[], uuid[], text[], smallint[], int[], bytea[], bytea[], text[], text);
	DROP TABLE {{s}}.events;
	DROP TABLE {{s}}.runs;

	-- append_group as in migration 3, writing chunks: p_chunks holds the
	-- number of events of each chunk, in event order; every request's
	-- events are split into whole chunks.
	CREATE FUNCTION {{s}}.append_group(
		p_streams text[], p_expected bigint[], p_counts int[],
		p_ids uuid[], p_types text[], p_ctypes smallint[], p_kinds int[],
		p_data bytea[], p_meta bytea[], p_tags text[], p_chunks int[], p_channel text)
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
		-- the accepted requests: index, offset of their events in the
		-- arrays, version before them, offset of their positions
		a_req int[] := '{}';
		a_off int[] := '{}';
		a_base bigint[] := '{}';
		a_rel bigint[] := '{}';
		v_off int := 0;
		v_total bigint := 0;
		v_first bigint;
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
	BEGIN
		WITH l AS (
			INSERT INTO {{s}}.streams AS t (id)
			SELECT DISTINCT u COLLATE "C" FROM unnest(p_streams) AS u ORDER BY 1
			ON CONFLICT (id) DO UPDATE SET id = t.id
			RETURNING t.id, t.version, t.deleted, t.tombstoned
		)
		SELECT array_agg(l.id), array_agg(l.version), array_agg(l.deleted OR l.tombstoned), array_agg(l.tombstoned), array_agg(false)
		INTO l_ids, l_versions, l_gone, l_tomb, l_touched FROM l;

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
					IF (exp = -2) OR (exp = -1 AND cur < 0) OR (exp = -4 AND cur >= 0) OR (exp >= 0 AND cur = exp) THEN
						a_req := a_req || i;
						a_off := a_off || v_off;
						a_base := a_base || l_versions[j];
						a_rel := a_rel || v_total;
						l_versions[j] := l_versions[j] + cnt;
						l_gone[j] := false;
						l_touched[j] := true;
						v_total := v_total + cnt;
						r_version[i] := l_versions[j];
						r_end[i] := v_total;
					ELSE
						r_status[i] := 1;
						r_version[i] := cur;
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
			INSERT INTO {{s}}.chunks (position, stream, version, count, first_id, ids, type, types, ctype, ctypes, data, metadata, tags, created)
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
				v_now
			FROM (SELECT c.n, (sum(c.n) OVER (ORDER BY c.o) - c.n)::int AS lo FROM unnest(p_chunks) WITH ORDINALITY AS c(n, o)) c
			JOIN (SELECT a.*, p_streams[a.req] AS stream, a.off + p_counts[a.req] AS hi
				FROM unnest(a_req, a_off, a_base, a_rel) AS a(req, off, base, rel)) a
				ON c.lo >= a.off AND c.lo < a.hi;
			PERFORM pg_notify(p_channel, (v_first + v_total - 1)::text);
		END IF;

		RETURN QUERY SELECT r_status[x], r_version[x], v_first + r_end[x] - 1, r_stream[x], r_rec[x]
			FROM generate_series(1, n) AS x;
	END
	$fn$;
	`
