package webui

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/server/auth"
)

// The dashboard's rates are measured by sampling, not counted as events
// happen: each time a dashboard asks for its figures, at most once a
// second, the UI notes the time, the log's last position and the read
// requests served. The rate between two samples is their difference over
// the time between them. Nothing runs while no dashboard is open, and what
// was sampled is kept (sampleHistory) for the next page that opens.

// sampleHistory bounds the samples kept: 5 minutes at one a second.
const sampleHistory = 300

// sampleEvery is the least time between two samples.
const sampleEvery = time.Second

// sample is the state of the server at one time.
type sample struct {
	at       time.Time
	next     uint64 // the log's next position: events committed so far
	reads    uint64
	hasReads bool
}

// sampler keeps the recent samples.
type sampler struct {
	store *cairn.Store
	reads func() uint64
	now   func() time.Time

	mu      sync.Mutex // guards samples; a leaf
	samples []sample   // oldest first, at most sampleHistory
}

func newSampler(store *cairn.Store, reads func() uint64, now func() time.Time) *sampler {
	return &sampler{store: store, reads: reads, now: now}
}

// point is a rate at a time, as the charts draw it.
type point struct {
	T int64   `json:"t"` // Unix milliseconds
	V float64 `json:"v"`
}

// take samples the server unless the last sample is recent, and returns
// the rates between the samples kept.
func (s *sampler) take(ctx context.Context) (appends, reads []point, err error) {
	now := s.now()
	s.mu.Lock()
	recent := len(s.samples) > 0 && now.Sub(s.samples[len(s.samples)-1].at) < sampleEvery
	s.mu.Unlock()
	if !recent {
		last, ok, err := s.store.LastPosition(ctx)
		if err != nil {
			return nil, nil, err
		}
		sm := sample{at: now}
		if ok {
			sm.next = last + 1
		}
		if s.reads != nil {
			sm.reads, sm.hasReads = s.reads(), true
		}
		s.mu.Lock()
		// Two requests may sample at once: keep the samples in time order.
		if n := len(s.samples); n == 0 || sm.at.After(s.samples[n-1].at) {
			s.samples = append(s.samples, sm)
			if len(s.samples) > sampleHistory {
				s.samples = append(s.samples[:0], s.samples[len(s.samples)-sampleHistory:]...)
			}
		}
		s.mu.Unlock()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := 1; i < len(s.samples); i++ {
		a, b := s.samples[i-1], s.samples[i]
		secs := b.at.Sub(a.at).Seconds()
		t := b.at.UnixMilli()
		appends = append(appends, point{T: t, V: float64(b.next-min(a.next, b.next)) / secs})
		if b.hasReads && a.hasReads {
			reads = append(reads, point{T: t, V: float64(b.reads-min(a.reads, b.reads)) / secs})
		}
	}
	return appends, reads, nil
}

// dashboardFigures are the dashboard's figures, for the page and its
// script.
type dashboardFigures struct {
	Head       int64   `json:"head"` // the last position; -1 when the log is empty
	DiskBytes  int64   `json:"diskBytes"`
	Disk       string  `json:"disk"` // DiskBytes for people, or why it is unknown
	Healthy    bool    `json:"healthy"`
	Health     string  `json:"health"`
	Uptime     string  `json:"uptime"`
	Appends    []point `json:"appends"`
	Reads      []point `json:"reads"`
	ReadsKnown bool    `json:"readsKnown"`
	Groups     int     `json:"groups"`
	Projs      int     `json:"projections"`
	Engine     string  `json:"engine"`
	// Clustered is set when the engine runs as one node of a cluster
	// (cairn.Cluster); Nodes are its nodes, or NodesErr says why they are
	// not known.
	Clustered bool      `json:"clustered"`
	Nodes     []nodeRow `json:"nodes,omitempty"`
	NodesErr  string    `json:"nodesError,omitempty"`
}

// nodeRow is one node of a cluster on the dashboard.
type nodeRow struct {
	ID      string `json:"id"`
	Address string `json:"address"`
	Alive   bool   `json:"alive"`
	Self    bool   `json:"self"`
	Applied uint64 `json:"applied"`
	Behind  uint64 `json:"behind"` // records behind the node that applied most
}

func (u *UI) figures(ctx context.Context) (dashboardFigures, error) {
	f := dashboardFigures{Head: -1, Healthy: true, Health: "healthy", ReadsKnown: u.host.ReadRequests != nil}
	appends, reads, err := u.rates.take(ctx)
	if err != nil {
		return f, err
	}
	f.Appends, f.Reads = appends, reads
	if f.Appends == nil {
		f.Appends = []point{}
	}
	if f.Reads == nil {
		f.Reads = []point{}
	}
	last, ok, err := u.host.Store.LastPosition(ctx)
	if err != nil {
		return f, err
	}
	if ok {
		f.Head = int64(last)
	}
	if n, err := u.host.Store.DiskBytes(ctx); err == nil {
		f.DiskBytes, f.Disk = n, formatBytes(n)
	} else {
		f.DiskBytes, f.Disk = -1, "not reported: "+err.Error()
	}
	if err := u.host.Store.Health(ctx); err != nil {
		f.Healthy, f.Health = false, err.Error()
	}
	f.Uptime = formatAgo(u.opts.Now().Sub(u.started))
	if u.host.Subscriptions != nil {
		if groups, err := u.host.Subscriptions.List(ctx, ""); err == nil {
			f.Groups = len(groups)
		}
	}
	if u.host.Projections != nil {
		f.Projs = len(u.host.Projections.List(ctx))
	}
	f.Engine = engineName(u.host.Store)
	if cl, ok := u.host.Store.Backend().(cairn.Cluster); ok {
		f.Clustered = true
		ms, err := cl.Members(ctx)
		if err != nil {
			f.NodesErr = err.Error()
		}
		var most uint64
		for _, m := range ms {
			most = max(most, m.Applied)
		}
		for _, m := range ms {
			f.Nodes = append(f.Nodes, nodeRow{ID: m.ID, Address: m.Address, Alive: m.Alive, Self: m.Self, Applied: m.Applied, Behind: most - m.Applied})
		}
	}
	return f, nil
}

// engineName names the engine under store by its package.
func engineName(store *cairn.Store) string {
	switch name := typeName(store.Backend()); name {
	case "diskstore.DB":
		return "embedded (diskstore)"
	case "pgstore.Store":
		return "PostgreSQL (pgstore)"
	case "memstore.Store":
		return "memory (memstore)"
	case "remotestore.Store":
		return "remote (remotestore)"
	case "natsstore.DB":
		return "replicated (natsstore)"
	default:
		return name
	}
}

func (u *UI) dashboard(w http.ResponseWriter, r *http.Request, p auth.Principal) {
	f, err := u.figures(r.Context())
	if err != nil {
		u.fail(w, r, p, 0, err)
		return
	}
	u.render(w, r, http.StatusOK, "dashboard", p, "Dashboard", f)
}

func (u *UI) dashboardJSON(w http.ResponseWriter, r *http.Request, _ auth.Principal) {
	f, err := u.figures(r.Context())
	if err != nil {
		jsonError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, f)
}

func typeName(v any) string { return strings.TrimPrefix(fmt.Sprintf("%T", v), "*") }
