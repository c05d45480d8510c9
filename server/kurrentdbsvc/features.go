package kurrentdbsvc

import (
	"context"
	"net"
	"strconv"
	"time"

	"github.com/cairndb/cairn"
	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/gossip"
	"github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/serverfeatures"
	"github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/shared"
)

// DiscoveryMethods returns the full names of the discovery RPCs, gossip and
// server features, which clients call before they authenticate anything: a
// host serves them without credentials, as KurrentDB does.
func DiscoveryMethods() []string {
	return []string{
		"/event_store.client.gossip.Gossip/Read",
		"/event_store.client.server_features.ServerFeatures/GetSupportedMethods",
	}
}

// featuresService tells clients which RPCs this server implements, exactly
// those registered (a test holds the two lists together); the clients
// enable features (batch append, multi-stream append, persistent
// subscriptions to $all) from it and use gRPC rather than their HTTP
// fallbacks.
type featuresService struct {
	serverfeatures.UnimplementedServerFeaturesServer
	s *Services
}

func (f *featuresService) GetSupportedMethods(context.Context, *shared.Empty) (*serverfeatures.SupportedMethods, error) {
	const streams = "event_store.client.streams.streams"
	methods := []*serverfeatures.SupportedMethod{
		{ServiceName: streams, MethodName: "read", Features: []string{"position", "events"}},
		{ServiceName: streams, MethodName: "append"},
		{ServiceName: streams, MethodName: "delete"},
		{ServiceName: streams, MethodName: "tombstone"},
		{ServiceName: streams, MethodName: "batchappend", Features: []string{"deadline_duration"}},
		{ServiceName: "event_store.client.gossip.gossip", MethodName: "read"},
		{ServiceName: "event_store.client.server_features.serverfeatures", MethodName: "getsupportedmethods"},
		{ServiceName: "kurrentdb.protocol.v2.streams.streamsservice", MethodName: "appendsession"},
		{ServiceName: "event_store.client.operations.operations", MethodName: "startscavenge"},
		{ServiceName: "event_store.client.operations.operations", MethodName: "stopscavenge"},
		{ServiceName: "kurrentdb.protocol.v2.streams.streamsservice", MethodName: "appendrecords"},
	}
	if f.s.groups != nil {
		const persistent = "event_store.client.persistent_subscriptions.persistentsubscriptions"
		// As KurrentDB does, every call of the service says it serves
		// groups on streams and on $all; the Node.js client uses gRPC for
		// list, getinfo and replayparked only when it sees them.
		both := []string{"stream", "all"}
		for _, m := range []string{"create", "update", "delete", "read", "getinfo", "list", "replayparked", "restartsubsystem"} {
			methods = append(methods, &serverfeatures.SupportedMethod{ServiceName: persistent, MethodName: m, Features: both})
		}
	}
	if f.s.users != nil {
		const users = "event_store.client.users.users"
		for _, m := range []string{"create", "update", "delete", "disable", "enable", "details", "changepassword", "resetpassword"} {
			methods = append(methods, &serverfeatures.SupportedMethod{ServiceName: users, MethodName: m})
		}
	}
	if f.s.projs != nil {
		for _, m := range projectionMethods {
			methods = append(methods, &serverfeatures.SupportedMethod{ServiceName: projectionsServiceName, MethodName: m})
		}
	}
	return &serverfeatures.SupportedMethods{Methods: methods, EventStoreServerVersion: Version}, nil
}

// gossipService describes the cluster: this node alone, alive and leader,
// at its advertised address; or, on an engine that runs as one node of a
// cluster (cairn.Cluster), every node of it. Any node of a cairn cluster
// takes writes; so that clients that prefer a leader agree on one, the
// alive node with the lowest id is reported as the leader and the others
// as followers.
type gossipService struct {
	gossip.UnimplementedGossipServer
	s *Services
}

func (g *gossipService) Read(ctx context.Context, _ *shared.Empty) (*gossip.ClusterInfo, error) {
	ms, err := g.s.members(ctx)
	if err != nil {
		return nil, status.Errorf(codes.Unavailable, "the cluster's members: %v", err)
	}
	out := &gossip.ClusterInfo{}
	for _, m := range ms {
		mi := &gossip.MemberInfo{
			InstanceId:   uuidToProto(m.id, false),
			TimeStamp:    m.since.UnixNano() / 100,
			State:        gossip.MemberInfo_Follower,
			IsAlive:      m.alive,
			HttpEndPoint: &gossip.EndPoint{Address: m.host, Port: uint32(m.port)},
		}
		if m.leader {
			mi.State = gossip.MemberInfo_Leader
		}
		out.Members = append(out.Members, mi)
	}
	return out, nil
}

// member is one node as gossip reports it.
type member struct {
	id            uuid.UUID
	since         time.Time
	leader, alive bool
	host          string
	port          int
}

// members returns the nodes gossip reports (see gossipService): this one
// alone, or every node of a cluster engine's with an address.
func (s *Services) members(ctx context.Context) ([]member, error) {
	host, port := splitEndPoint(s.advertised())
	self := member{id: s.id, since: s.started, leader: true, alive: true, host: host, port: port}
	cl, ok := s.store.Backend().(cairn.Cluster)
	if !ok {
		return []member{self}, nil
	}
	ms, err := cl.Members(ctx)
	if err != nil {
		return nil, err
	}
	leader := ""
	for _, m := range ms {
		if m.Alive && m.Address != "" && (leader == "" || m.ID < leader) {
			leader = m.ID
		}
	}
	var out []member
	for _, m := range ms {
		if m.Address == "" {
			continue
		}
		mv := member{id: uuid.NewSHA1(uuid.NameSpaceOID, []byte(m.ID)), since: time.Now(), leader: m.ID == leader, alive: m.Alive}
		mv.host, mv.port = splitEndPoint(m.Address)
		if m.Self {
			mv.id, mv.since = s.id, s.started
		}
		out = append(out, mv)
	}
	if len(out) == 0 {
		return []member{self}, nil
	}
	return out, nil
}

func splitEndPoint(addr string) (string, int) {
	if h, p, err := net.SplitHostPort(addr); err == nil {
		port, _ := strconv.Atoi(p)
		return h, port
	}
	return addr, 0
}

// syncIfLeaderRequired makes a read that the client sent with the header
// requires-leader: true (KurrentDB's "read from the leader") see every
// write acknowledged anywhere in a cluster: it waits until this node's
// copy holds them ([cairn.Store.Sync]). On a store of one copy it costs
// nothing.
func (s *Services) syncIfLeaderRequired(ctx context.Context) error {
	md, _ := metadata.FromIncomingContext(ctx)
	if v := md.Get("requires-leader"); len(v) == 0 || v[0] != "true" {
		return nil
	}
	if err := s.store.Sync(ctx); err != nil {
		return status.Errorf(codes.Unavailable, "requires-leader: this node cannot reach the cluster's log: %v", err)
	}
	return nil
}
