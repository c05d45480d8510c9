package kurrentdbsvc

import (
	"context"
	"net"
	"strconv"

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

// gossipService describes a cluster of one node: this one, alive and
// leader, at its advertised address.
type gossipService struct {
	gossip.UnimplementedGossipServer
	s *Services
}

func (g *gossipService) Read(context.Context, *shared.Empty) (*gossip.ClusterInfo, error) {
	host, port := g.s.advertised(), 0
	if h, p, err := net.SplitHostPort(host); err == nil {
		host = h
		port, _ = strconv.Atoi(p)
	}
	return &gossip.ClusterInfo{Members: []*gossip.MemberInfo{{
		InstanceId:   uuidToProto(g.s.id, false),
		TimeStamp:    g.s.started.UnixNano() / 100,
		State:        gossip.MemberInfo_Leader,
		IsAlive:      true,
		HttpEndPoint: &gossip.EndPoint{Address: host, Port: uint32(port)},
	}}}, nil
}
