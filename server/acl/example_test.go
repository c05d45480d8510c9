package acl_test

import (
	"fmt"

	"github.com/cairndb/cairn/server/acl"
	"github.com/cairndb/cairn/server/auth"
)

// A stream's own ACL, the defaults of $settings and KurrentDB's defaults
// decide, in that order, operation by operation.
func ExampleAllowed() {
	own, err := acl.FromMetadata([]byte(`{"$maxCount": 10, "$acl": {"$r": ["ada", "accounting"], "$w": "ada"}}`))
	if err != nil {
		panic(err)
	}
	settings, err := acl.ParseSettings([]byte(`{"$userStreamAcl": {"$d": "$admins"}}`))
	if err != nil {
		panic(err)
	}
	ada := auth.Principal{Name: "ada"}
	bob := auth.Principal{Name: "bob", Groups: []string{"accounting"}}
	for _, c := range []struct {
		who auth.Principal
		op  acl.Operation
	}{
		{ada, acl.Write}, {bob, acl.Read}, {bob, acl.Write}, {bob, acl.Delete}, {bob, acl.MetadataRead},
	} {
		fmt.Printf("%s may %s ledger: %v\n", c.who.Name, c.op, acl.Allowed(c.who, c.op, "ledger", own, settings))
	}
	fmt.Println("bob may read $all:", acl.Allowed(bob, acl.Read, acl.AllStream, acl.ACL{}, settings))
	// Output:
	// ada may write ledger: true
	// bob may read ledger: true
	// bob may write ledger: false
	// bob may delete ledger: false
	// bob may read the metadata of ledger: true
	// bob may read $all: false
}
