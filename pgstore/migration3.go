package pgstore

// migration3: runs. A stream's events are found through one row per append
// (its stream, first version, first position and count, and the id
// of its first event for retry detection) instead of an index entry
// per event: an append of 1000 events maintains one index of the
// events table, the position key, instead of two. The streams row
// lock already serialises the appends to a stream, so versions need
// no unique index of their own. Existing events are split into runs
// where an append began (first) or where versions or positions do not
// follow on. append_group takes the events' types as a dictionary.
const migration3 = `
	CREATE TABLE {{s}}.runs (
		stream   text COLLATE "C" NOT NULL,
		version  bigint NOT NULL, -- version of the first event
		position bigint NOT NULL, -- position of the first event
		count    int NOT NULL,    -- events, at consecutive versions and positions
		id       uuid,            -- id of the first event; NULL once compacted
		PRIMARY KEY (stream, version)
	);
	CREATE UNIQUE INDEX runs_id_key ON {{s}}.runs (id);
	INSERT INTO {{s}}.runs (stream, version, position, count, id)
	SELECT stream, min(version), min(position), count(*), (array_agg(id) FILTER (WHERE first))[1]
	FROM (
		SELECT stream, version, position, id, first,
			count(*) FILTER (WHERE starts) OVER (PARTITION BY stream ORDER BY version) AS run
		FROM (
			SELECT stream, version, position, id, first,
				first OR lag(version) OVER w IS DISTINCT FROM version - 1
					OR lag(position) OVER w IS DISTINCT FROM position - 1 AS starts
			FROM {{s}}.events
			WINDOW w AS (PARTITION BY stream ORDER BY version)
		) m
	) g
	GROUP BY stream, run;
	ALTER TABLE {{s}}.events DROP CONSTRAINT events_stream_version_key;
	DROP INDEX {{s}}.events_id_key;
	ALTER TABLE {{s}}.events DROP COLUMN first;
	DROP FUNCTION {{s}}.append_group(text[], bigint[], int[], uuid[], text[], smallint[], bytea[], bytea[], text[], text);

	-- append_group as in migration 2, writing runs. Types and content
	-- types come as a dictionary (p_types, p_ctypes) and one index into it
	-- per event (p_kinds, 1-based; NULL when every event has the first
	-- entry), so that an append of events of one type sends no per-event
	-- array for them.
	CREATE FUNCTION {{s}}.append_group(
		p_streams text[], p_expected bigint[], p_counts int[],
		p_ids uuid[], p_types text[], p_ctypes smallint[], p_kinds int[],
		p_data bytea[], p_meta bytea[], p_tags text[], p_channel text)
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
		v_stream text;
		v_lo bigint;
		v_hi bigint;
		v_version bigint;
		v_position bigint;
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
				SELECT r.stream, r.version INTO rs, rv FROM {{s}}.runs r WHERE r.id = p_ids[v_off + 1];
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
			INSERT INTO {{s}}.runs (stream, version, position, count, id)
			SELECT p_streams[a.req], a.base + 1, v_first + a.rel, p_counts[a.req], p_ids[a.off + 1]
			FROM unnest(a_req, a_off, a_base, a_rel) AS a(req, off, base, rel);
			-- Values used for every event are computed once: a subscript of
			-- a variable in the insert would be evaluated for every row.
			v_type := p_types[1];
			v_ctype := p_ctypes[1];
			IF cardinality(a_req) = 1 THEN
				-- One append: its events are a contiguous slice.
				v_stream := p_streams[a_req[1]];
				v_lo := a_off[1];
				v_hi := a_off[1] + v_total;
				v_version := a_base[1] - a_off[1];
				v_position := v_first - a_off[1] - 1;
				INSERT INTO {{s}}.events (position, stream, version, id, type, content_type, data, metadata, tags, created)
				SELECT v_position + e.n, v_stream, v_version + e.n, e.id,
					CASE WHEN e.kind IS NULL THEN v_type ELSE p_types[e.kind] END,
					CASE WHEN e.kind IS NULL THEN v_ctype ELSE p_ctypes[e.kind] END,
					e.data, e.meta,
					CASE WHEN e.tags IS NULL THEN NULL ELSE string_to_array(e.tags, E'\x1f') END, v_now
				FROM unnest(p_ids, p_kinds, p_data, p_meta, p_tags) WITH ORDINALITY AS e(id, kind, data, meta, tags, n)
				WHERE e.n > v_lo AND e.n <= v_hi;
			ELSE
				INSERT INTO {{s}}.events (position, stream, version, id, type, content_type, data, metadata, tags, created)
				SELECT v_first + a.rel + e.n - a.off - 1, a.stream, a.base + e.n - a.off, e.id,
					CASE WHEN e.kind IS NULL THEN v_type ELSE p_types[e.kind] END,
					CASE WHEN e.kind IS NULL THEN v_ctype ELSE p_ctypes[e.kind] END,
					e.data, e.meta,
					CASE WHEN e.tags IS NULL THEN NULL ELSE string_to_array(e.tags, E'\x1f') END, v_now
				FROM (SELECT a.*, p_streams[a.req] AS stream, a.off + p_counts[a.req] AS hi
					FROM unnest(a_req, a_off, a_base, a_rel) AS a(req, off, base, rel)) a
				JOIN unnest(p_ids, p_kinds, p_data, p_meta, p_tags) WITH ORDINALITY AS e(id, kind, data, meta, tags, n)
					ON e.n > a.off AND e.n <= a.hi;
			END IF;
			PERFORM pg_notify(p_channel, (v_first + v_total - 1)::text);
		END IF;

		RETURN QUERY SELECT r_status[x], r_version[x], v_first + r_end[x] - 1, r_stream[x], r_rec[x]
			FROM generate_series(1, n) AS x;
	END
	$fn$;
	`
