package server_test

import (
	"bufio"
	"context"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/diskstore"
	"github.com/cairndb/cairn/internal/buildinfo"
	"github.com/cairndb/cairn/server"
	"github.com/kurrent-io/KurrentDB-Client-Go/kurrentdb"
)

// scrape reads the /metrics page at base into a map from each sample's
// name and labels, as the page prints them, to its value.
func scrape(t *testing.T, base string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics: %s", resp.Status)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("%s: %v", line, err)
		}
		out[line[:i]] = v
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// The metrics report the store's state as each scrape finds it: the head
// of the log, the engine's size on disk, each persistent subscription
// group's lag, in-flight and parked events, each projection's lag, and the
// build.
func TestMetricsReportTheStoresState(t *testing.T) {
	db, err := diskstore.Open(t.TempDir(), diskstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ts := startOn(t, db, projectionOptions())
	web := httptest.NewServer(ts.HTTPHandler())
	defer web.Close()
	ctx := context.Background()
	c := ts.client(t)

	if _, err := c.AppendToStream(ctx, "jobs", kurrentdb.AppendToStreamOptions{}, events(5, "Job")...); err != nil {
		t.Fatal(err)
	}
	if err := c.CreatePersistentSubscription(ctx, "jobs", "workers", kurrentdb.PersistentStreamSubscriptionOptions{StartFrom: kurrentdb.Start{}}); err != nil {
		t.Fatal(err)
	}
	if err := c.CreatePersistentSubscription(ctx, "jobs", "idle", kurrentdb.PersistentStreamSubscriptionOptions{StartFrom: kurrentdb.Start{}}); err != nil {
		t.Fatal(err)
	}
	sub, err := c.SubscribeToPersistentSubscription(ctx, "jobs", "workers", kurrentdb.SubscribeToPersistentSubscriptionOptions{BufferSize: 10})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	first, second := recvPersistent(t, sub).Event, recvPersistent(t, sub).Event
	recvPersistent(t, sub) // the third, and the two queued behind it, stay in flight
	if err := sub.Ack(first); err != nil {
		t.Fatal(err)
	}
	if err := sub.Nack("poison", kurrentdb.NackActionPark, second); err != nil {
		t.Fatal(err)
	}
	waitParked(t, c, "jobs", "workers", 1)

	pc := ts.projections(t)
	if err := pc.Create(ctx, "count", countProjection, kurrentdb.CreateProjectionOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := pc.Enable(ctx, "count", kurrentdb.GenericProjectionOptions{}); err != nil {
		t.Fatal(err)
	}
	const lagOfCount = `cairn_projection_lag_events{projection="count"}`
	until(t, "the projection caught up", func() (bool, string) {
		v, ok := scrape(t, web.URL)[lagOfCount]
		return ok && v == 0, strconv.FormatFloat(v, 'f', -1, 64)
	})

	// The projection writes its checkpoints meanwhile: the head lies
	// between the position of the last job and the last position after
	// the scrape.
	jobs, err := ts.store.ReadStream(ctx, "jobs", cairn.StreamEnd, 1, cairn.Backward)
	if err != nil {
		t.Fatal(err)
	}
	m := scrape(t, web.URL)
	last, ok, err := ts.store.LastPosition(ctx)
	if err != nil || !ok {
		t.Fatalf("last position: %v %v", ok, err)
	}
	if got := m["cairn_head_position"]; got < float64(jobs[0].Position) || got > float64(last) {
		t.Errorf("cairn_head_position %v, want the last event's position, in [%d, %d]", got, jobs[0].Position, last)
	}
	if got := m["cairn_disk_bytes"]; got <= 0 {
		t.Errorf("cairn_disk_bytes %v, want the engine's size", got)
	}
	// The group commit's counts: the appends and the projection's
	// checkpoints so far, in at least one group, and synced.
	writes, groups := m["cairn_commit_writes_total"], m["cairn_commit_groups_total"]
	syncs, syncSeconds := m["cairn_commit_syncs_total"], m["cairn_commit_sync_seconds_total"]
	if groups < 1 || writes < groups || syncs < 1 || syncSeconds <= 0 {
		t.Errorf("cairn_commit_writes_total %v, _groups_total %v, _syncs_total %v, _sync_seconds_total %v: want writes ≥ groups ≥ 1, syncs ≥ 1 and time spent", writes, groups, syncs, syncSeconds)
	}
	if st, err := ts.store.CommitStats(); err != nil || float64(st.Writes) < writes || float64(st.Syncs) < syncs {
		t.Errorf("the engine's counts after the scrape, %+v (%v), are behind the scrape's", st, err)
	}
	for name, want := range map[string]float64{
		`cairn_persistent_subscription_lag_events{group="workers",stream="jobs"}`: 3,
		// The three events after the parked one, given to the consumer.
		`cairn_persistent_subscription_in_flight_events{group="workers",stream="jobs"}`:                                                3,
		`cairn_persistent_subscription_parked_events{group="workers",stream="jobs"}`:                                                   1,
		`cairn_persistent_subscription_lag_events{group="idle",stream="jobs"}`:                                                         5,
		`cairn_persistent_subscription_parked_events{group="idle",stream="jobs"}`:                                                      0,
		`cairn_build_info{go="` + runtime.Version() + `",protocol="` + buildinfo.Protocol + `",version="` + buildinfo.Version() + `"}`: 1,
	} {
		if got, ok := m[name]; !ok || got != want {
			t.Errorf("%s = %v (present %v), want %v", name, got, ok, want)
		}
	}

	// A stopped projection falls behind as events arrive.
	if err := pc.Disable(ctx, "count", kurrentdb.GenericProjectionOptions{}); err != nil {
		t.Fatal(err)
	}
	waitProjectionStatus(t, pc, "count", "Stopped")
	before := scrape(t, web.URL)[lagOfCount]
	if _, err := c.AppendToStream(ctx, "jobs", kurrentdb.AppendToStreamOptions{}, events(2, "Job")...); err != nil {
		t.Fatal(err)
	}
	m = scrape(t, web.URL)
	if got := m[lagOfCount]; got != before+2 {
		t.Errorf("the stopped projection lags by %v after 2 appends, want %v", got, before+2)
	}
	if got := m[`cairn_persistent_subscription_lag_events{group="idle",stream="jobs"}`]; got != 7 {
		t.Errorf("the idle group lags by %v after 2 more appends, want 7", got)
	}
}

// TestMetricsLeaveOutWhatTheEngineCannotTell: on the memory engine, which
// commits no groups and keeps nothing on disk, the commit counts are
// absent and the disk's size is 0.
func TestMetricsLeaveOutWhatTheEngineCannotTell(t *testing.T) {
	ts := start(t, server.Options{})
	web := httptest.NewServer(ts.HTTPHandler())
	defer web.Close()
	if _, err := ts.client(t).AppendToStream(context.Background(), "jobs", kurrentdb.AppendToStreamOptions{}, events(2, "Job")...); err != nil {
		t.Fatal(err)
	}
	m := scrape(t, web.URL)
	for _, name := range []string{"cairn_commit_writes_total", "cairn_commit_groups_total", "cairn_commit_syncs_total", "cairn_commit_sync_seconds_total"} {
		if v, ok := m[name]; ok {
			t.Errorf("%s = %v on the memory engine, want it absent", name, v)
		}
	}
	if v, ok := m["cairn_disk_bytes"]; !ok || v != 0 {
		t.Errorf("cairn_disk_bytes = %v (present %v), want 0", v, ok)
	}
}
