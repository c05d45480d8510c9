package pgstore

// migration2: append_group, the one-round-trip append of a group of requests.
// Per request (p_streams, p_expected in the numeric form, p_counts) and
// per event (the other arrays; tags joined by U+001F, NULL for none), it
// locks the streams in id order, checks each request and writes the
// ones that pass, taking the head row's lock as late as possible. It
// returns one row per request: status 0 written (version and position
// of its last event), 1 wrong expected version (out_version is the
// actual version), 2 tombstoned, 3 its first event id is recorded
// already (rec_stream, rec_version say where).
const migration2 = `
	CREATE FUNCTION {{s}}.append_group(
		p_streams text[], p_expected bigint[], p_counts int[],
		p_ids uuid[], p_types text[], p_ctypes smallint[], p_data bytea[], p_meta bytea[], p_tags text[],
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
				SELECT e.stream, e.version INTO rs, rv FROM {{s}}.events e WHERE e.id = p_ids[v_off + 1] AND e.first;
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
			INSERT INTO {{s}}.events (position, stream, version, id, type, content_type, data, metadata, tags, created, first)
			SELECT v_first + a.rel + e.n - a.off - 1, p_streams[a.req], a.base + e.n - a.off, e.id, e.type,
				e.ctype, e.data, e.meta,
				CASE WHEN e.tags IS NULL THEN NULL ELSE string_to_array(e.tags, E'\x1f') END,
				v_now, e.n = a.off + 1
			FROM unnest(a_req, a_off, a_base, a_rel) AS a(req, off, base, rel)
			JOIN unnest(p_ids, p_types, p_ctypes, p_data, p_meta, p_tags) WITH ORDINALITY AS e(id, type, ctype, data, meta, tags, n)
				ON e.n > a.off AND e.n <= a.off + p_counts[a.req];
			PERFORM pg_notify(p_channel, (v_first + v_total - 1)::text);
		END IF;

		RETURN QUERY SELECT r_status[x], r_version[x], v_first + r_end[x] - 1, r_stream[x], r_rec[x]
			FROM generate_series(1, n) AS x;
	END
	$fn$;
	`
