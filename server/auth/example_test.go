package auth_test

import (
	"context"
	"fmt"

	"github.com/cairndb/cairn/server/auth"
)

// A service asks who makes a request; the server put the principal in the
// request's context when it authenticated the request.
func Example() {
	greet := func(ctx context.Context) string {
		p, ok := auth.FromContext(ctx)
		if !ok {
			return "hello, anonymous"
		}
		return "hello, " + p.Name
	}
	ctx := context.Background()
	fmt.Println(greet(ctx))
	fmt.Println(greet(auth.NewContext(ctx, auth.Principal{Name: "admin"})))
	// Output:
	// hello, anonymous
	// hello, admin
}
