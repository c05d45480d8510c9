package server

import (
	"context"
	"errors"
	"runtime"
	"time"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/internal/buildinfo"
	"github.com/prometheus/client_golang/prometheus"
)

// stateTimeout bounds what one scrape spends reading the store.
const stateTimeout = 5 * time.Second

// buildInfo is cairn_build_info: constant 1, the build in its labels.
func buildInfo() prometheus.Collector {
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "cairn_build_info",
		Help: "Always 1: the cairn version, the KurrentDB protocol version it serves and the Go version it was built with, as labels.",
		ConstLabels: prometheus.Labels{
			"version":  buildinfo.Version(),
			"protocol": buildinfo.Protocol,
			"go":       runtime.Version(),
		},
	}, func() float64 { return 1 })
}

// stateCollector reports, at each scrape, what the server's store and
// subscriptions hold: it reads them then, so a scrape costs a read of the
// log's head, the engine's size, and the head of each group's and
// projection's source. What cannot be read is left out of the scrape, and
// the log says why.
type stateCollector struct {
	s *Server

	head, disk                 *prometheus.Desc
	commitWrites, commitGroups *prometheus.Desc
	commitSyncs, commitSyncSec *prometheus.Desc
	groupLag, inFlight, parked *prometheus.Desc
	projectionLag              *prometheus.Desc
	nodeUp, nodeApplied        *prometheus.Desc
}

func newStateCollector(s *Server) *stateCollector {
	group := []string{"stream", "group"}
	return &stateCollector{
		s: s,
		head: prometheus.NewDesc("cairn_head_position",
			"Global position of the last event in the log; absent while the log is empty.", nil, nil),
		disk: prometheus.NewDesc("cairn_disk_bytes",
			"Bytes the engine holds on disk (0 for the memory engine); absent for an engine that cannot tell.", nil, nil),
		commitWrites: prometheus.NewDesc("cairn_commit_writes_total",
			"Write requests in the groups the engine committed since it was opened; divided by cairn_commit_groups_total, how many concurrent writes each group carried. Absent for an engine without group commit.", nil, nil),
		commitGroups: prometheus.NewDesc("cairn_commit_groups_total",
			"Groups of writes the engine committed since it was opened.", nil, nil),
		commitSyncs: prometheus.NewDesc("cairn_commit_syncs_total",
			"Syncs the engine made for writes since it was opened, each making the groups before it durable: fdatasync calls on the embedded engine, synchronous commits on PostgreSQL.", nil, nil),
		commitSyncSec: prometheus.NewDesc("cairn_commit_sync_seconds_total",
			"Time those syncs took: the fdatasync calls on the embedded engine; on PostgreSQL, the round trips of the group calls whose commit flushed.", nil, nil),
		groupLag: prometheus.NewDesc("cairn_persistent_subscription_lag_events",
			"Events of a persistent subscription group's stream after the last one it processed (positions of the log for a group on $all).", group, nil),
		inFlight: prometheus.NewDesc("cairn_persistent_subscription_in_flight_events",
			"Events a persistent subscription group has given to consumers and not yet had answered.", group, nil),
		parked: prometheus.NewDesc("cairn_persistent_subscription_parked_events",
			"Events in a persistent subscription group's parked list.", group, nil),
		projectionLag: prometheus.NewDesc("cairn_projection_lag_events",
			"Events of a projection's source after the last one it processed: positions of the log, or versions of the one stream it reads.", []string{"projection"}, nil),
		nodeUp: prometheus.NewDesc("cairn_cluster_node_up",
			"1 for a node of this server's cluster that was heard from lately, 0 for one that was not; one per node the cluster's registry holds. Absent on an engine that is not a cluster's node.", []string{"node", "address"}, nil),
		nodeApplied: prometheus.NewDesc("cairn_cluster_node_applied_sequence",
			"The sequence of the last record of the cluster's log a node's copy holds durably, as the node last reported; a node's lag is the largest of them less its own.", []string{"node"}, nil),
	}
}

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.head, c.disk, c.commitWrites, c.commitGroups, c.commitSyncs, c.commitSyncSec, c.groupLag, c.inFlight, c.parked, c.projectionLag, c.nodeUp, c.nodeApplied} {
		ch <- d
	}
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), stateTimeout)
	defer cancel()
	s := c.s
	if last, ok, err := s.store.LastPosition(ctx); err != nil {
		s.log.Warn("metrics: reading the head of the log", "err", err)
	} else if ok {
		ch <- prometheus.MustNewConstMetric(c.head, prometheus.GaugeValue, float64(last))
	}
	if n, err := s.store.DiskBytes(ctx); err == nil {
		ch <- prometheus.MustNewConstMetric(c.disk, prometheus.GaugeValue, float64(n))
	} else if !errors.Is(err, cairn.ErrNotSupported) {
		s.log.Warn("metrics: reading the engine's size on disk", "err", err)
	}
	if st, err := s.store.CommitStats(); err == nil {
		ch <- prometheus.MustNewConstMetric(c.commitWrites, prometheus.CounterValue, float64(st.Writes))
		ch <- prometheus.MustNewConstMetric(c.commitGroups, prometheus.CounterValue, float64(st.Groups))
		ch <- prometheus.MustNewConstMetric(c.commitSyncs, prometheus.CounterValue, float64(st.Syncs))
		ch <- prometheus.MustNewConstMetric(c.commitSyncSec, prometheus.CounterValue, st.SyncTime.Seconds())
	}
	if s.groups != nil {
		stats, err := s.groups.Stats(ctx)
		if err != nil {
			s.log.Warn("metrics: reading the persistent subscriptions", "err", err)
		}
		for _, g := range stats {
			ch <- prometheus.MustNewConstMetric(c.groupLag, prometheus.GaugeValue, float64(g.Lag), g.Stream, g.Group)
			ch <- prometheus.MustNewConstMetric(c.inFlight, prometheus.GaugeValue, float64(g.InFlight), g.Stream, g.Group)
			ch <- prometheus.MustNewConstMetric(c.parked, prometheus.GaugeValue, float64(g.Parked), g.Stream, g.Group)
		}
	}
	if s.projections != nil {
		lags, err := s.projections.Lags(ctx)
		if err != nil {
			s.log.Warn("metrics: reading the projections", "err", err)
		}
		for _, l := range lags {
			ch <- prometheus.MustNewConstMetric(c.projectionLag, prometheus.GaugeValue, float64(l.Events), l.Name)
		}
	}
	if cl, ok := s.store.Backend().(cairn.Cluster); ok {
		ms, err := cl.Members(ctx)
		if err != nil {
			s.log.Warn("metrics: reading the cluster's nodes", "err", err)
		}
		for _, m := range ms {
			up := 0.0
			if m.Alive {
				up = 1
			}
			ch <- prometheus.MustNewConstMetric(c.nodeUp, prometheus.GaugeValue, up, m.ID, m.Address)
			ch <- prometheus.MustNewConstMetric(c.nodeApplied, prometheus.GaugeValue, float64(m.Applied), m.ID)
		}
	}
}
