// Package remote registers the engine that uses a cairn server
// (remotestore) with storeurl, for cairn://, kurrentdb:// and esdb:// URLs.
// Import it for its side effect:
//
//	import _ "github.com/cairndb/cairn/storeurl/remote"
package remote

import (
	"context"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/remotestore"
	"github.com/cairndb/cairn/storeurl"
)

func init() { storeurl.Register(storeurl.Remote, open) }

// open connects to the server. remotestore's errors show the URL redacted.
func open(_ context.Context, url string, opts storeurl.Options) (cairn.Backend, error) {
	s, err := remotestore.Open(url, remotestore.Options{Logger: opts.Store.Logger})
	if err != nil {
		return nil, err
	}
	return s, nil
}
