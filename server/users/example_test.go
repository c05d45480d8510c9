package users_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/cairndb/cairn/memstore"
	"github.com/cairndb/cairn/server/users"
)

// Create a user, authenticate it, and refuse its old password once it
// changed.
func Example() {
	ctx := context.Background()
	store := memstore.Open()
	defer store.Close()
	db := users.New(store, users.Options{})
	if err := db.Bootstrap(ctx, users.Builtin{AdminPassword: "changeit", OpsPassword: "changeit"}); err != nil {
		panic(err)
	}
	if err := db.Create(ctx, users.NewUser{Login: "ada", FullName: "Ada Lovelace", Groups: []string{"accounting"}, Password: "s3cret"}); err != nil {
		panic(err)
	}
	p, err := db.Authenticate(ctx, "ada", "s3cret")
	fmt.Println(p.Name, p.Groups, err)

	if err := db.ChangePassword(ctx, "ada", "s3cret", "n3w"); err != nil {
		panic(err)
	}
	_, err = db.Authenticate(ctx, "ada", "s3cret")
	fmt.Println(errors.Is(err, users.ErrBadCredentials))

	all, err := db.List(ctx)
	if err != nil {
		panic(err)
	}
	for _, u := range all {
		fmt.Println(u.Login, u.Groups)
	}
	// Output:
	// ada [accounting] <nil>
	// true
	// ada [accounting]
	// admin [$admins]
	// ops [$ops]
}
