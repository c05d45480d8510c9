package pgstore

// migration5: the expected-version rule in one place. Migrations 2 to 4 each
// wrote it out in append_group; expected_ok holds it now, and
// append_group, otherwise as in migration 4, calls it. p_expected is
// the expectation in its numeric form (cairn.ExpectedVersion.Int64: -2
// any, -1 no stream, -4 stream exists, n >= 0 exactly n) and p_current
// the stream's version (-1 when it does not exist or was deleted); the
// rule is cairn.ExpectedVersion.Check's.
const migration5 = `
	CREATE FUNCTION {{s}}.expected_ok(p_expected bigint, p_current bigint) RETURNS boolean
	LANGUAGE sql IMMUTABLE PARALLEL SAFE
	AS $fn$
		SELECT p_expected = -2 OR (p_expected = -1 AND p_current < 0)
			OR (p_expected = -4 AND p_current >= 0) OR (p_expected >= 0 AND p_current = p_expected)
	$fn$;

	CREATE OR REPLACE FUNCTION {{s}}.append_group(
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
					IF {{s}}.expected_ok(exp, cur) THEN
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
