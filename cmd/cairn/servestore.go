package main

import (
	"fmt"
	"net/url"

	"github.com/cairndb/cairn/storeurl"
)

// checkServeStore refuses a store that serve cannot keep its system
// streams in: a server (cairn://…) reached without credentials. A server
// over another server's store keeps its users, stream metadata,
// persistent subscriptions and projections in that store's system
// streams, which only an administrator may write.
func checkServeStore(raw string) error {
	kind, _, err := storeurl.Parse(raw)
	if err != nil || kind != storeurl.Remote {
		return err
	}
	u, err := url.Parse(raw)
	if err != nil {
		return err // Parse accepted it: not reached
	}
	if u.User == nil || u.User.Username() == "" {
		return fmt.Errorf("--store %s: a server over another server's store keeps its users, stream metadata and subscriptions there, as an administrator of that server: "+
			"name one in the URL, cairn://admin:PASSWORD@%s", storeurl.Redact(raw), u.Host)
	}
	return nil
}
