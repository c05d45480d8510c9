package server_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/kurrent-io/KurrentDB-Client-Go/kurrentdb"
)

// grantRead sets the ACL of stream so that roles may read it.
func grantRead(t *testing.T, admin *kurrentdb.Client, stream string, roles ...string) {
	t.Helper()
	var a kurrentdb.Acl
	a.AddReadRoles(roles...)
	var meta kurrentdb.StreamMetadata
	meta.SetAcl(a)
	if _, err := admin.SetStreamMetadata(context.Background(), stream, kurrentdb.AppendToStreamOptions{}, meta); err != nil {
		t.Fatalf("set the ACL of %s: %v", stream, err)
	}
}

// linkTo is an application's link event to version n of stream.
func linkTo(stream string, n int) kurrentdb.EventData {
	return kurrentdb.EventData{EventType: "$>", ContentType: kurrentdb.ContentTypeBinary, Data: []byte(strconv.Itoa(n) + "@" + stream)}
}

// A link resolves, for each reader, to an event it may read: a link to an
// event of a stream whose ACL refuses the reader comes as the link alone,
// as a link to a deleted event does. So in reads of streams, of category
// streams (which need their own read right first: system streams, the
// administrators' by default) and of $all, in catch-up subscriptions and in
// persistent subscriptions, whose group resolves links once for consumers
// of different users.
func TestResolvedLinksRespectACLs(t *testing.T) {
	w := newACLWorld(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// ledger-1: accounting (ada) reads it, bob does not.
	appendEvents(t, w.admin, "ledger-1", events(3, "Entry")...)
	grantRead(t, w.admin, "ledger-1", "accounting")
	appendEvents(t, w.admin, "public-1", jsonEvent("Entry", `{"n":0}`))
	appendEvents(t, w.admin, "feed", linkTo("ledger-1", 0), linkTo("public-1", 0), linkTo("ledger-1", 2))
	resolve := kurrentdb.ReadStreamOptions{ResolveLinkTos: true}

	sameShape(t, "bob reading feed, links resolved", shape(readStream(t, w.bob, "feed", resolve)), []string{
		"0 0@ledger-1->none", "1 0@public-1->public-1/0 Entry", "2 2@ledger-1->none",
	})
	sameShape(t, "ada reading feed, links resolved", shape(readStream(t, w.ada, "feed", resolve)), []string{
		"0 0@ledger-1->ledger-1/0 Entry", "1 0@public-1->public-1/0 Entry", "2 2@ledger-1->ledger-1/2 Entry",
	})
	sameShape(t, "the admin reading feed, links resolved", shape(readStream(t, w.admin, "feed", resolve)), []string{
		"0 0@ledger-1->ledger-1/0 Entry", "1 0@public-1->public-1/0 Entry", "2 2@ledger-1->ledger-1/2 Entry",
	})

	// $ce-ledger is a system stream: bob may not read it until its ACL
	// lets him; then he reads its links, but not the events they name.
	if _, err := drain(w.bob.ReadStream(ctx, "$ce-ledger", kurrentdb.ReadStreamOptions{}, 10)); !denied(err) {
		t.Errorf("bob reading $ce-ledger: %v, want access denied", err)
	}
	grantRead(t, w.admin, "$ce-ledger", "bob", "ada")
	sameShape(t, "bob reading $ce-ledger, links resolved", shape(readStream(t, w.bob, "$ce-ledger", resolve)), []string{
		"0 0@ledger-1->none", "1 1@ledger-1->none", "2 2@ledger-1->none",
	})
	if got := readStream(t, w.bob, "$ce-ledger", kurrentdb.ReadStreamOptions{}); len(got) != 3 || string(got[0].Event.Data) != "0@ledger-1" {
		t.Errorf("bob reading $ce-ledger without resolving: %q, want its three links", shape(got))
	}
	sameShape(t, "ada reading $ce-ledger, links resolved", shape(readStream(t, w.ada, "$ce-ledger", resolve)), []string{
		"0 0@ledger-1->ledger-1/0 Entry", "1 1@ledger-1->ledger-1/1 Entry", "2 2@ledger-1->ledger-1/2 Entry",
	})

	// $all, once its ACL lets bob read it.
	grantRead(t, w.admin, "$all", "bob")
	all, err := drain(w.bob.ReadAll(ctx, kurrentdb.ReadAllOptions{ResolveLinkTos: true, From: kurrentdb.Start{}}, 1000))
	if err != nil {
		t.Fatalf("bob reading $all: %v", err)
	}
	var feed []*kurrentdb.ResolvedEvent
	for _, e := range all {
		if e.OriginalEvent().StreamID == "feed" {
			feed = append(feed, e)
		}
	}
	sameShape(t, "bob reading $all, links resolved", shape(feed), []string{
		"0 0@ledger-1->none", "1 0@public-1->public-1/0 Entry", "2 2@ledger-1->none",
	})

	// A catch-up subscription.
	sub, err := w.bob.SubscribeToStream(ctx, "feed", kurrentdb.SubscribeToStreamOptions{From: kurrentdb.Start{}, ResolveLinkTos: true})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	var got []*kurrentdb.ResolvedEvent
	for len(got) < 3 {
		m := sub.Recv()
		switch {
		case m.SubscriptionDropped != nil:
			t.Fatalf("bob's subscription to feed dropped: %v", m.SubscriptionDropped.Error)
		case m.EventAppeared != nil:
			got = append(got, m.EventAppeared)
		}
	}
	sameShape(t, "bob's subscription to feed, links resolved", shape(got), []string{
		"0 0@ledger-1->none", "1 0@public-1->public-1/0 Entry", "2 2@ledger-1->none",
	})

	// A persistent subscription: one group, consumers of two users.
	settings := kurrentdb.SubscriptionSettingsDefault()
	settings.ResolveLinkTos = true
	if err := w.admin.CreatePersistentSubscription(ctx, "feed", "readers", kurrentdb.PersistentStreamSubscriptionOptions{Settings: &settings, StartFrom: kurrentdb.Start{}}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name   string
		client *kurrentdb.Client
		want   string
	}{
		{"bob", w.bob, "0 0@ledger-1->none"},
		{"ada", w.ada, "0 0@ledger-1->ledger-1/0 Entry"},
	} {
		ps, err := c.client.SubscribeToPersistentSubscription(ctx, "feed", "readers", kurrentdb.SubscribeToPersistentSubscriptionOptions{})
		if err != nil {
			t.Fatalf("%s consuming feed: %v", c.name, err)
		}
		ev := recvPersistent(t, ps).Event
		sameShape(t, c.name+"'s persistent subscription to feed", shape([]*kurrentdb.ResolvedEvent{ev}), []string{c.want})
		// Not acknowledged: the next consumer gets it again.
		if err := ps.Nack("retry", kurrentdb.NackActionRetry, ev); err != nil {
			t.Fatal(err)
		}
		ps.Close()
	}
}
