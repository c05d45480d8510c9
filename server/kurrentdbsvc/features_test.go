package kurrentdbsvc_test

import (
	"context"
	"encoding/json"
	"net"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/memstore"
	"github.com/cairndb/cairn/projections"
	"github.com/cairndb/cairn/server/kurrentdbsvc"
	"github.com/cairndb/cairn/server/users"
	"github.com/cairndb/cairn/subscription"
	"github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/serverfeatures"
	"github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/shared"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// TestFeaturesListWhatIsServed checks that server features advertise
// exactly the methods registered, with and without persistent
// subscriptions: a client must not be told of a method that would answer
// Unimplemented, nor fall back to HTTP for one that is served.
func TestFeaturesListWhatIsServed(t *testing.T) {
	for _, withGroups := range []bool{true, false} {
		store := cairn.NewStore(memstore.New(), cairn.Options{})
		defer store.Close()
		host := kurrentdbsvc.Host{Store: store}
		if withGroups {
			m, err := subscription.NewManager(store, subscription.ManagerOptions{})
			if err != nil {
				t.Fatal(err)
			}
			host.Subscriptions = m
		}
		srv := grpc.NewServer()
		kurrentdbsvc.New(host, kurrentdbsvc.Options{}).Register(srv)
		var registered []string
		for svc, info := range srv.GetServiceInfo() {
			for _, m := range info.Methods {
				registered = append(registered, strings.ToLower(svc+"/"+m.Name))
			}
		}
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		go srv.Serve(lis)
		conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := serverfeatures.NewServerFeaturesClient(conn).GetSupportedMethods(context.Background(), &shared.Empty{})
		if err != nil {
			t.Fatal(err)
		}
		var advertised []string
		for _, m := range resp.GetMethods() {
			advertised = append(advertised, m.GetServiceName()+"/"+m.GetMethodName())
		}
		conn.Close()
		srv.Stop()
		slices.Sort(registered)
		slices.Sort(advertised)
		if !slices.Equal(registered, advertised) {
			t.Errorf("persistent subscriptions %v:\nregistered %q\nadvertised %q", withGroups, registered, advertised)
		}
	}
}

// TestInfoReportsWhatIsServed: /info's features say projections and user
// management are there exactly when the host serves them, as its server
// features do, so that a client reading either sees the same server.
func TestInfoReportsWhatIsServed(t *testing.T) {
	ctx := context.Background()
	for _, served := range []bool{true, false} {
		store := cairn.NewStore(memstore.New(), cairn.Options{})
		defer store.Close()
		host := kurrentdbsvc.Host{Store: store}
		if served {
			projs, err := projections.NewManager(ctx, store, projections.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer projs.Close(ctx)
			host.Projections = projs
			host.Users = users.New(store, users.Options{Hash: users.HashParams{Time: 1, MemoryKiB: 2048, Threads: 1}})
		}
		rec := httptest.NewRecorder()
		kurrentdbsvc.New(host, kurrentdbsvc.Options{}).HTTPHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/info", nil))
		var info struct {
			Features map[string]bool `json:"features"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &info); err != nil || rec.Code != 200 {
			t.Fatalf("/info: %d %s", rec.Code, rec.Body)
		}
		for _, f := range []string{"projections", "userManagement"} {
			if v, ok := info.Features[f]; !ok || v != served {
				t.Errorf("served %v: /info features.%s = %v (present %v), want %v", served, f, v, ok, served)
			}
		}
	}
}
