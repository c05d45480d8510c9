package export_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/export"
	"github.com/cairndb/cairn/memstore"
	"github.com/google/uuid"
)

var ctx = context.Background()

// fill writes a store that holds a bit of everything an export must carry:
// many streams and types, JSON written compactly and with spaces, JSON with
// characters an encoder likes to escape, binary data, invalid UTF-8,
// metadata of every kind, tags, a soft-deleted stream, one deleted and
// recreated, a truncated one, a tombstoned one, and stream metadata as the
// server writes it ($$stream, through the engine).
func fill(t *testing.T, s *cairn.Store) {
	t.Helper()
	rng := rand.New(rand.NewPCG(7, 7))
	must := func(stream string, exp cairn.ExpectedVersion, events ...cairn.EventData) {
		t.Helper()
		if _, err := s.Append(ctx, stream, exp, events...); err != nil {
			t.Fatalf("append to %s: %v", stream, err)
		}
	}
	datas := []struct {
		ct   cairn.ContentType
		data string
	}{
		{cairn.ContentJSON, `{"total":42,"items":["a","b"]}`},
		{cairn.ContentJSON, "{\n  \"pretty\": true\n}"},
		{cairn.ContentJSON, `{"html":"<b>&</b>","sep":"` + "\u2028\u2029" + `","big":123456789012345678901234567890}`},
		{cairn.ContentJSON, `"a string"`},
		{cairn.ContentJSON, `null`},
		{cairn.ContentJSON, `{"bad":"` + "\xff\xfe" + `"}`},
		{cairn.ContentJSON, `not json`},
		{cairn.ContentJSON, ``},
		{cairn.ContentBinary, "\x00\x01\x02\xff"},
		{cairn.ContentBinary, `{"binary":"but json"}`},
	}
	metas := []string{"", `{"user":"ada","correlation":"x-1"}`, "\x00meta", `{ "spaced": 1 }`}
	for i := range 300 {
		if i == 150 { // a long run of one stream, which batches cut in pieces
			long := make([]cairn.EventData, 60)
			for j := range long {
				long[j] = cairn.EventData{Type: "Long", Data: fmt.Appendf(nil, `{"j":%d}`, j)}
			}
			must("long", cairn.NoStream, long...)
		}
		stream := fmt.Sprintf("%s-%d", []string{"order", "user", "invoice", "blob"}[i%4], rng.IntN(25))
		d := datas[rng.IntN(len(datas))]
		var tags []string
		if rng.IntN(3) == 0 {
			tags = []string{"t" + fmt.Sprint(rng.IntN(5)), "vip"}
		}
		must(stream, cairn.Any, cairn.EventData{
			Type: fmt.Sprintf("Type%d", rng.IntN(7)), ContentType: d.ct, Data: []byte(d.data),
			Metadata: []byte(metas[rng.IntN(len(metas))]), Tags: tags,
		})
	}
	must("gone", cairn.NoStream, cairn.EventData{Type: "A", Data: []byte(`{}`)}, cairn.EventData{Type: "B", Data: []byte(`{}`)})
	if err := s.DeleteStream(ctx, "gone", cairn.Any); err != nil {
		t.Fatal(err)
	}
	must("reborn", cairn.NoStream, cairn.EventData{Type: "A", Data: []byte(`{}`)})
	if err := s.DeleteStream(ctx, "reborn", cairn.Any); err != nil {
		t.Fatal(err)
	}
	must("reborn", cairn.NoStream, cairn.EventData{Type: "Again", Data: []byte(`{"n":1}`)})
	for i := range 10 {
		must("cut", cairn.Any, cairn.EventData{Type: "E", Data: fmt.Appendf(nil, `{"i":%d}`, i)})
	}
	if err := s.TruncateStream(ctx, "cut", 6); err != nil {
		t.Fatal(err)
	}
	must("dead", cairn.NoStream, cairn.EventData{Type: "E", Data: []byte(`{}`)})
	if err := s.TombstoneStream(ctx, "dead", cairn.Any); err != nil {
		t.Fatal(err)
	}
	// Stream metadata, written as the server writes it.
	if _, err := s.System().Append(ctx, "$$order-1", cairn.Any, cairn.EventData{
		Type: "$metadata", Data: []byte(`{"$maxCount":10,"owner":"ada"}`)}); err != nil {
		t.Fatal(err)
	}
	must("order-1", cairn.Any, cairn.EventData{Type: "Late", Data: []byte(`{}`)})
}

// exportOf exports s.
func exportOf(t *testing.T, s *cairn.Store, opts export.Options) []byte {
	t.Helper()
	var buf bytes.Buffer
	if _, err := export.Write(ctx, s, &buf, opts); err != nil {
		t.Fatalf("export: %v", err)
	}
	return buf.Bytes()
}

// normalize turns an export into what must survive an import: positions
// become ranks (the target assigns its own, in the same order), creation
// times and the header's time and head go, and placeholders are dropped.
func normalize(t *testing.T, exp []byte) []string {
	t.Helper()
	var out []string
	rank := 0
	for l := range strings.Lines(string(exp)) {
		var m map[string]any
		d := json.NewDecoder(strings.NewReader(l))
		d.UseNumber()
		if err := d.Decode(&m); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		if h, ok := m["cairn_export"].(map[string]any); ok {
			delete(h, "created")
			delete(h, "head")
			delete(h, "source")
		}
		if end, ok := m["end"].(map[string]any); ok {
			delete(end, "events") // placeholders are events of the target's log
		}
		if _, ok := m["id"]; ok {
			if m["type"] == export.PlaceholderType {
				continue
			}
			delete(m, "created")
			m["position"] = rank
			rank++
		}
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, string(b))
	}
	return out
}

func sameExports(t *testing.T, what string, a, b []byte) {
	t.Helper()
	na, nb := normalize(t, a), normalize(t, b)
	if !slices.Equal(na, nb) {
		for i := range max(len(na), len(nb)) {
			var x, y string
			if i < len(na) {
				x = na[i]
			}
			if i < len(nb) {
				y = nb[i]
			}
			if x != y {
				t.Fatalf("%s: exports differ at line %d:\n  %s\n  %s", what, i+1, x, y)
			}
		}
	}
}

// sameReads checks what a user relies on beyond the export's text: every
// stream reads the same events (ids, versions, bytes), and the states match.
func sameReads(t *testing.T, a, b *cairn.Store, streams []string) {
	t.Helper()
	for _, id := range streams {
		ea, errA := readStream(a, id)
		eb, errB := readStream(b, id)
		if (errA == nil) != (errB == nil) || (errA != nil && !sameSentinel(errA, errB)) {
			t.Fatalf("read %q: %v in the source, %v in the target", id, errA, errB)
		}
		if len(ea) != len(eb) {
			t.Fatalf("read %q: %d events in the source, %d in the target", id, len(ea), len(eb))
		}
		for i := range ea {
			x, y := ea[i], eb[i]
			if x.ID != y.ID || x.Version != y.Version || x.Type != y.Type || x.ContentType != y.ContentType ||
				!bytes.Equal(x.Data, y.Data) || !bytes.Equal(x.Metadata, y.Metadata) || !slices.Equal(x.Tags, y.Tags) {
				t.Fatalf("read %q event %d:\n source %+v\n target %+v", id, i, x, y)
			}
		}
	}
}

func sameSentinel(a, b error) bool {
	for _, e := range []error{cairn.ErrStreamNotFound, cairn.ErrStreamDeleted} {
		if errors.Is(a, e) && errors.Is(b, e) {
			return true
		}
	}
	return false
}

func readStream(s *cairn.Store, id string) ([]cairn.Event, error) {
	var out []cairn.Event
	for e, err := range s.Stream(ctx, id, 0, cairn.Forward) {
		if err != nil {
			return out, err
		}
		out = append(out, e)
	}
	return out, nil
}

// streamsOf lists every stream an export names.
func streamsOf(t *testing.T, exp []byte) []string {
	t.Helper()
	var out []string
	for l := range strings.Lines(string(exp)) {
		var m struct {
			State *export.StreamState `json:"stream_state"`
		}
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatal(err)
		}
		if m.State != nil {
			out = append(out, m.State.Stream)
		}
	}
	return out
}

func importInto(t *testing.T, s *cairn.Store, exp []byte, opts export.ImportOptions) export.Stats {
	t.Helper()
	st, err := export.Import(ctx, s, bytes.NewReader(exp), opts)
	if err != nil {
		t.Fatalf("import: %v", err)
	}
	return st
}

// logLen counts the events of the log but the engine's records of
// deletions, which an export leaves out.
func logLen(t *testing.T, s *cairn.Store) int {
	t.Helper()
	n := 0
	for e, err := range s.All(ctx, 0, cairn.Forward) {
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := cairn.ParseDeletion(&e); ok {
			continue
		}
		n++
	}
	return n
}

func TestRoundTripKeepsEverything(t *testing.T) {
	src := memstore.Open()
	fill(t, src)
	a := exportOf(t, src, export.Options{})
	dst := memstore.Open()
	st := importInto(t, dst, a, export.ImportOptions{BatchEvents: 7})
	if st.Events != int64(logLen(t, src)) || st.Placeholders != 0 {
		t.Fatalf("import stats %+v, the source log holds %d events", st, logLen(t, src))
	}
	sameExports(t, "memory → memory", a, exportOf(t, dst, export.Options{}))
	streams := streamsOf(t, a)
	for _, want := range []string{"gone", "reborn", "cut", "dead", "$$order-1", "order-1"} {
		if !slices.Contains(streams, want) {
			t.Fatalf("the export lacks stream %q: %v", want, streams)
		}
	}
	sameReads(t, src, dst, streams)
	// A soft-deleted stream recreated in the target continues after its
	// last deleted version, as in the source.
	for _, s := range []*cairn.Store{src, dst} {
		res, err := s.Append(ctx, "gone", cairn.NoStream, cairn.EventData{Type: "Back", Data: []byte(`{}`)})
		if err != nil || res.Version != 2 {
			t.Fatalf("recreate gone: %+v, %v; want version 2", res, err)
		}
	}
}

func TestExportRecordsEveryField(t *testing.T) {
	s := memstore.Open()
	id := uuid.New()
	if _, err := s.Append(ctx, "order-1", cairn.NoStream,
		cairn.EventData{ID: id, Type: "OrderPlaced", Data: []byte(`{"total":42}`), Metadata: []byte(`{"user":"ada"}`), Tags: []string{"vip"}},
		cairn.EventData{Type: "Raw", ContentType: cairn.ContentBinary, Data: []byte{0, 1}},
		cairn.EventData{Type: "Pretty", Data: []byte("{ \"a\": 1 }")}); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(exportOf(t, s, export.Options{Source: "memory:"}))), "\n")
	if len(lines) != 6 {
		t.Fatalf("export = %d lines, want header, state, 3 events, end:\n%s", len(lines), strings.Join(lines, "\n"))
	}
	var h struct {
		H export.Header `json:"cairn_export"`
	}
	if err := json.Unmarshal([]byte(lines[0]), &h); err != nil || h.H.Format != export.Format || h.H.Head != 2 || h.H.Source != "memory:" {
		t.Fatalf("header %s: %+v, %v", lines[0], h, err)
	}
	if lines[1] != `{"stream_state":{"stream":"order-1","state":"live","first_version":0}}` {
		t.Fatalf("stream state = %s", lines[1])
	}
	for _, want := range []string{`"stream":"order-1"`, `"version":0`, `"position":0`, `"id":"` + id.String() + `"`, `"type":"OrderPlaced"`,
		`"content_type":"application/json"`, `"data":{"total":42}`, `"metadata":{"user":"ada"}`, `"tags":["vip"]`, `"created":"`} {
		if !strings.Contains(lines[2], want) {
			t.Errorf("event line %s lacks %s", lines[2], want)
		}
	}
	if !strings.Contains(lines[3], `"content_type":"application/octet-stream","data_base64":"AAE="`) {
		t.Errorf("binary event line = %s", lines[3])
	}
	if !strings.Contains(lines[4], `"data_base64":"eyAiYSI6IDEgfQ=="`) {
		t.Errorf("JSON with spaces must be base64 to keep its bytes: %s", lines[4])
	}
	if lines[5] != `{"end":{"events":3,"streams":1}}` {
		t.Errorf("end = %s", lines[5])
	}
}

func TestExportOfStreamsAndPrefixes(t *testing.T) {
	src := memstore.Open()
	fill(t, src)
	for _, tc := range []struct {
		opts export.Options
		want func(string) bool
	}{
		{export.Options{Streams: []string{"order-1", "cut"}}, func(s string) bool { return s == "order-1" || s == "$$order-1" || s == "cut" }},
		{export.Options{Prefixes: []string{"user-", "re"}}, func(s string) bool { return strings.HasPrefix(s, "user-") || s == "reborn" }},
	} {
		exp := exportOf(t, src, tc.opts)
		streams := streamsOf(t, exp)
		if len(streams) == 0 {
			t.Fatalf("%+v: nothing exported", tc.opts)
		}
		for _, s := range streams {
			if !tc.want(s) {
				t.Fatalf("%+v exported stream %q", tc.opts, s)
			}
		}
		dst := memstore.Open()
		importInto(t, dst, exp, export.ImportOptions{})
		sameReads(t, src, dst, streams)
		sameExports(t, fmt.Sprintf("%+v", tc.opts), exp, exportOf(t, dst, tc.opts))
	}
	if _, err := export.Write(ctx, src, io.Discard, export.Options{Streams: []string{"$all"}}); err == nil {
		t.Fatal("an export of $all as a stream was accepted")
	}
}

// An import cut short — a cancelled context after some events, a reader
// that fails half-way, an export without its end — and run again finishes
// with every event once, whatever batches the first run wrote.
func TestInterruptedImportRunAgain(t *testing.T) {
	src := memstore.Open()
	fill(t, src)
	exp := exportOf(t, src, export.Options{})
	total := logLen(t, src)
	for _, tc := range []struct {
		name   string
		first  func(dst *cairn.Store) error
		second export.ImportOptions
	}{
		{"context cancelled after 120 events", func(dst *cairn.Store) error {
			cctx, cancel := context.WithCancel(ctx)
			defer cancel()
			n := int64(0)
			_, err := export.Import(cctx, dst, bytes.NewReader(exp), export.ImportOptions{BatchEvents: 16, Progress: func(e, _ int64) {
				if n += e; n == 120 {
					cancel()
				}
			}})
			return err
		}, export.ImportOptions{BatchEvents: 16}},
		{"reader fails half-way, run again with other batches", func(dst *cairn.Store) error {
			// The reader fails in the middle of the long stream's run.
			half := bytes.Index(exp, []byte(`"stream":"long","version":35,`))
			_, err := export.Import(ctx, dst, &failingReader{r: bytes.NewReader(exp), left: half}, export.ImportOptions{BatchEvents: 10})
			return err
		}, export.ImportOptions{BatchEvents: 33}},
		{"export without its end, run again one event at a time", func(dst *cairn.Store) error {
			cut := exp[:bytes.LastIndex(exp[:len(exp)-1], []byte("\n"))+1]
			_, err := export.Import(ctx, dst, bytes.NewReader(cut), export.ImportOptions{})
			if err != nil && !strings.Contains(err.Error(), "without its end record") {
				return fmt.Errorf("unexpected: %w", err)
			}
			return err
		}, export.ImportOptions{BatchEvents: 1}},
		{"complete import run again", func(dst *cairn.Store) error {
			_, err := export.Import(ctx, dst, bytes.NewReader(exp), export.ImportOptions{})
			if err == nil {
				err = errors.New("complete") // the test wants the first run to stop
			}
			return err
		}, export.ImportOptions{BatchEvents: 5}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dst := memstore.Open()
			if err := tc.first(dst); err == nil {
				t.Fatal("the first run did not stop")
			}
			importInto(t, dst, exp, tc.second)
			if n := logLen(t, dst); n != total {
				t.Fatalf("after the second run the target's log holds %d events, the export %d", n, total)
			}
			sameExports(t, "after an interrupted import", exp, exportOf(t, dst, export.Options{}))
			sameReads(t, src, dst, streamsOf(t, exp))
		})
	}
}

type failingReader struct {
	r    io.Reader
	left int
}

func (f *failingReader) Read(p []byte) (int, error) {
	if f.left <= 0 {
		return 0, errors.New("disk on fire")
	}
	p = p[:min(len(p), f.left)]
	n, err := f.r.Read(p)
	f.left -= n
	return n, err
}

// An export cut short applies no stream state: a stream the export deletes
// at the end stays readable until the complete export is imported.
func TestCutExportAppliesNoState(t *testing.T) {
	src := memstore.Open()
	if _, err := src.Append(ctx, "a", cairn.NoStream, cairn.EventData{Type: "E", Data: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	if err := src.DeleteStream(ctx, "a", cairn.Any); err != nil {
		t.Fatal(err)
	}
	exp := exportOf(t, src, export.Options{})
	cut := exp[:bytes.LastIndex(exp[:len(exp)-1], []byte("\n"))+1]
	dst := memstore.Open()
	if _, err := export.Import(ctx, dst, bytes.NewReader(cut), export.ImportOptions{}); err == nil || !strings.Contains(err.Error(), "cut short") {
		t.Fatalf("import of a cut export: %v", err)
	}
	if ok, _ := dst.HasEvents(ctx); ok {
		t.Fatal("a cut export's last batch was written")
	}
}

func TestImportRefusesWhatIsNotAnExport(t *testing.T) {
	src := memstore.Open()
	fill(t, src)
	exp := string(exportOf(t, src, export.Options{}))
	lines := strings.SplitAfter(exp, "\n")
	header := lines[0]
	cases := []struct {
		name, in, want string
	}{
		{"empty", "", "empty"},
		{"not JSON", "hello\n", "line 1: not a JSON object"},
		{"no header", lines[2], "not a cairn export"},
		{"newer format", `{"cairn_export":{"format":99}}` + "\n", "format 99"},
		{"version gap", header + `{"stream":"s","version":0,"id":"` + uuid.NewString() + `","type":"E","content_type":"application/json","data":{}}` + "\n" +
			`{"stream":"s","version":2,"id":"` + uuid.NewString() + `","type":"E","content_type":"application/json","data":{}}` + "\n", `line 3: stream "s": version 2 follows version 0`},
		{"missing start", header + `{"stream":"s","version":3,"id":"` + uuid.NewString() + `","type":"E","content_type":"application/json"}` + "\n", "versions 0 to 2 are missing"},
		{"bad id", header + `{"stream":"s","version":0,"id":"nope","type":"E","content_type":"application/json"}` + "\n", `line 2: stream "s" version 0: id "nope"`},
		{"bad content type", header + `{"stream":"s","version":0,"id":"` + uuid.NewString() + `","type":"E","content_type":"text/plain"}` + "\n", `content_type "text/plain"`},
		{"empty type", header + `{"stream":"s","version":0,"id":"` + uuid.NewString() + `","content_type":"application/json"}` + "\n" + `{"end":{"events":1,"streams":0}}` + "\n", "type: must not be empty"},
		{"wrong count", header + `{"end":{"events":5,"streams":0}}` + "\n", "the end record counts 5 events"},
		{"after the end", header + `{"end":{"events":0,"streams":0}}` + "\n" + "{}\n", "lines after the end record"},
		{"blank lines are fine", header + "\n" + `{"end":{"events":0,"streams":0}}` + "\n\n \n" + "x\n", "line 6: lines after the end record"},
	}
	for _, tc := range cases {
		dst := memstore.Open()
		_, err := export.Import(ctx, dst, strings.NewReader(tc.in), export.ImportOptions{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error containing %q", tc.name, err, tc.want)
		}
		if ok, _ := dst.HasEvents(ctx); ok {
			t.Errorf("%s: the target holds events", tc.name)
		}
	}
}

// A target stream that holds other events at the export's versions is
// named, with both ids; the import stops there.
func TestImportRefusesATargetWithOtherEvents(t *testing.T) {
	src := memstore.Open()
	if _, err := src.Append(ctx, "s", cairn.NoStream, cairn.EventData{Type: "E", Data: []byte(`{}`)}, cairn.EventData{Type: "E", Data: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	dst := memstore.Open()
	other, err := dst.Append(ctx, "s", cairn.NoStream, cairn.EventData{Type: "Mine", Data: []byte(`{}`)})
	if err != nil {
		t.Fatal(err)
	}
	_, err = export.Import(ctx, dst, bytes.NewReader(exportOf(t, src, export.Options{})), export.ImportOptions{})
	if err == nil || !strings.Contains(err.Error(), `stream "s" versions 0 to 1: the target holds another event at version 0`) {
		t.Fatalf("import over other events: %v", err)
	}
	if v, _ := dst.StreamVersion(ctx, "s"); v != other.Version {
		t.Fatalf("the target stream is at version %d after the refused import", v)
	}
}

// A stream whose first versions were truncated and compacted away keeps its
// versions in the target, above placeholders that are truncated away.
func TestImportBelowACompactedTruncation(t *testing.T) {
	var in bytes.Buffer
	w := bufio.NewWriter(&in)
	fmt.Fprintln(w, `{"cairn_export":{"format":1,"head":20}}`)
	fmt.Fprintln(w, `{"stream_state":{"stream":"cut","state":"live","first_version":15}}`)
	var ids []uuid.UUID
	for v := 15; v < 20; v++ {
		id := uuid.New()
		ids = append(ids, id)
		fmt.Fprintf(w, `{"stream":"cut","version":%d,"position":%d,"id":"%s","type":"E","content_type":"application/json","data":{"v":%d}}`+"\n", v, v+1, id, v)
	}
	fmt.Fprintln(w, `{"end":{"events":5,"streams":1}}`)
	w.Flush()
	for run := range 2 { // the second run is a repeat
		dst := memstore.Open()
		for range run + 1 {
			st := importInto(t, dst, in.Bytes(), export.ImportOptions{BatchEvents: 4})
			if st.Placeholders != 15 {
				t.Fatalf("placeholders = %d, want 15", st.Placeholders)
			}
		}
		got, err := readStream(dst, "cut")
		if err != nil || len(got) != 5 {
			t.Fatalf("read cut: %d events, %v", len(got), err)
		}
		for i, e := range got {
			if e.Version != int64(15+i) || e.ID != ids[i] {
				t.Fatalf("event %d: version %d id %v, want %d %v", i, e.Version, e.ID, 15+i, ids[i])
			}
		}
		if n := logLen(t, dst); n != 20 {
			t.Fatalf("the log holds %d events, want 15 placeholders and 5 events", n)
		}
	}
}

// The import writes stream metadata ($$stream) through the Store's system
// view: an event the Store would refuse is refused there too.
func TestImportChecksMetadataEvents(t *testing.T) {
	in := `{"cairn_export":{"format":1,"head":0}}` + "\n" +
		`{"stream":"$$s","version":0,"id":"` + uuid.NewString() + `","type":"","content_type":"application/json","data":{}}` + "\n" +
		`{"end":{"events":1,"streams":0}}` + "\n"
	dst := cairn.NewStore(memstore.New(), cairn.Options{})
	if _, err := export.Import(ctx, dst, strings.NewReader(in), export.ImportOptions{}); err == nil || !strings.Contains(err.Error(), "type: must not be empty") {
		t.Fatalf("import of a metadata event without a type: %v", err)
	}
}

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }

// recorder is an engine that records the size of every batch appended.
type recorder struct {
	*memstore.Store
	batches []int
}

func (r *recorder) AppendBatch(ctx context.Context, reqs []cairn.AppendRequest) ([]cairn.AppendResult, error) {
	n := 0
	for _, q := range reqs {
		for _, e := range q.Events {
			n += len(e.Data) + len(e.Metadata)
		}
	}
	r.batches = append(r.batches, n)
	return r.Store.AppendBatch(ctx, reqs)
}

// A batch holds at most BatchBytes of data and metadata, unless one event
// alone is larger (a server refuses a message past its limit).
func TestImportBatchesKeepTheirSize(t *testing.T) {
	src := memstore.Open()
	for i := range 20 {
		size := 300
		if i == 7 {
			size = 5000
		}
		data := fmt.Appendf(nil, `{"pad":"%s"}`, strings.Repeat("x", size))
		if _, err := src.Append(ctx, fmt.Sprintf("s-%d", i), cairn.Any, cairn.EventData{Type: "E", Data: data}); err != nil {
			t.Fatal(err)
		}
	}
	rec := &recorder{Store: memstore.New()}
	dst := cairn.NewStore(rec, cairn.Options{})
	importInto(t, dst, exportOf(t, src, export.Options{}), export.ImportOptions{BatchBytes: 1000})
	for _, n := range rec.batches {
		if n > 1000 && n < 5000 {
			t.Fatalf("a batch of %d bytes, the limit is 1000 (batches %v)", n, rec.batches)
		}
	}
	if logLen(t, dst) != 20 {
		t.Fatalf("imported %d events", logLen(t, dst))
	}
}
