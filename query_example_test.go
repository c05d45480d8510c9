package cairn_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/memstore"
)

// A user name is unique across every stream: the registration reads the
// events tagged with the name, decides, and appends on the condition that
// none was appended since the read.
func ExampleStore_AppendIf() {
	ctx := context.Background()
	store := cairn.NewStore(memstore.New(), cairn.Options{})
	defer store.Close()

	register := func(user, name string) error {
		q := cairn.Query{Items: []cairn.QueryItem{{Types: []string{"UserRegistered"}, Tags: []string{"username:" + name}}}}
		events, head, err := store.Query(ctx, q, 0, cairn.Forward)
		if err != nil {
			return err
		}
		for _, err := range events {
			if err != nil {
				return err
			}
			return fmt.Errorf("%s is taken", name)
		}
		_, err = store.AppendIf(ctx, "user-"+user, cairn.NoStream,
			cairn.AppendCondition{FailIfEventsMatch: q, After: head},
			cairn.EventData{Type: "UserRegistered", Data: []byte(`{}`), Tags: []string{"username:" + name}})
		return err
	}
	fmt.Println(register("1", "ada"))
	fmt.Println(register("2", "ada"))

	// Two registrations that read before either appended: the second
	// append fails its condition, naming the first one's event.
	q := cairn.Query{Items: []cairn.QueryItem{{Tags: []string{"username:bob"}}}}
	cond := cairn.AppendCondition{FailIfEventsMatch: q, After: new(uint64(0))}
	bob := cairn.EventData{Type: "UserRegistered", Data: []byte(`{}`), Tags: []string{"username:bob"}}
	_, err := store.AppendIf(ctx, "user-3", cairn.NoStream, cond, bob)
	fmt.Println(err)
	_, err = store.AppendIf(ctx, "user-4", cairn.NoStream, cond, bob)
	var ce *cairn.ConditionError
	fmt.Println(errors.As(err, &ce), ce.Position)
	// Output:
	// <nil>
	// ada is taken
	// <nil>
	// true 1
}
