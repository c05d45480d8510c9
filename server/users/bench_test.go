package users_test

import (
	"context"
	"testing"
	"time"

	"github.com/cairndb/cairn/memstore"
	"github.com/cairndb/cairn/server/users"
)

// BenchmarkAuthenticate measures one authentication with the default
// Argon2id parameters: "cached", a credential verified before, as every
// request but the first of a client within the cache's TTL; "hashed", with
// the cache off, what each request would cost without it.
//
//	go test -run '^$' -bench Authenticate ./server/users
func BenchmarkAuthenticate(b *testing.B) {
	for _, tc := range []struct {
		name string
		ttl  time.Duration
	}{{"cached", 0}, {"hashed", time.Nanosecond}} {
		b.Run(tc.name, func(b *testing.B) {
			ctx := context.Background()
			store := memstore.Open()
			defer store.Close()
			db := users.New(store, users.Options{CacheTTL: tc.ttl})
			if err := db.Create(ctx, users.NewUser{Login: "ada", Password: "s3cret"}); err != nil {
				b.Fatal(err)
			}
			if _, err := db.Authenticate(ctx, "ada", "s3cret"); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if _, err := db.Authenticate(ctx, "ada", "s3cret"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkRecall recalls the credentials a connection authenticated with
// (users.Memo), as the server does for each request that sends them again.
//
//	go test -run '^$' -bench Recall -benchmem ./server/users
func BenchmarkRecall(b *testing.B) {
	ctx := context.Background()
	store := memstore.Open()
	defer store.Close()
	db := users.New(store, users.Options{})
	if err := db.Create(ctx, users.NewUser{Login: "ada", Password: "s3cret"}); err != nil {
		b.Fatal(err)
	}
	const header = "Basic YWRhOnMzY3JldA=="
	var m users.Memo
	if _, err := db.AuthenticateMemo(ctx, &m, header, "ada", "s3cret"); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, ok := db.Recall(&m, header); !ok {
			b.Fatal("not recalled")
		}
	}
}
