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

// A user holds its own name, its groups and $all as roles; administrators
// are the admin user and the members of $admins.
func ExamplePrincipal() {
	ada := auth.Principal{Name: "ada", Groups: []string{"accounting", auth.RoleAdmins}}
	bob := auth.Principal{Name: "bob"}
	fmt.Println(ada.InRole("ada"), ada.InRole("accounting"), ada.InRole(auth.RoleAll), ada.IsAdmin())
	fmt.Println(bob.InRole("accounting"), bob.IsAdmin(), auth.Principal{Name: "admin"}.IsAdmin())
	// Output:
	// true true true true
	// false false true
}
