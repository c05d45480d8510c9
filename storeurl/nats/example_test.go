package nats_test

import (
	"fmt"

	natsurl "github.com/cairndb/cairn/storeurl/nats"
)

// A nats:// URL names the NATS servers and the node; Parse returns the
// options natsstore.Open takes.
func ExampleParse() {
	o, err := natsurl.Parse("nats://h1:4222,h2:4222,h3:4222?dir=./node1&stream=ORDERS")
	if err != nil {
		panic(err)
	}
	fmt.Println(o.URL)
	fmt.Println(o.Dir, o.Stream)
	// Output:
	// nats://h1:4222,nats://h2:4222,nats://h3:4222
	// ./node1 ORDERS
}
