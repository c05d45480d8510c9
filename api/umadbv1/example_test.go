package umadbv1_test

import (
	"fmt"

	"github.com/cairndb/cairn/api/umadbv1"
)

// A read of the events tagged course:1, newest first, as an UmaDB client
// sends it.
func Example() {
	req := &umadbv1.ReadRequest{
		Query:     &umadbv1.Query{Items: []*umadbv1.QueryItem{{Tags: []string{"course:1"}}}},
		Backwards: new(true),
		Limit:     new(uint32(10)),
	}
	fmt.Println(umadbv1.DCB_Read_FullMethodName, req.GetQuery().GetItems()[0].GetTags(), req.GetBackwards(), req.GetLimit())
	// Output: /umadb.v1.DCB/Read [course:1] true 10
}
