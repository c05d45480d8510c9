package main

// The engines the cairn command opens by URL (--store): each registers
// itself with storeurl.
import (
	_ "github.com/cairndb/cairn/storeurl/disk"
	_ "github.com/cairndb/cairn/storeurl/nats"
	_ "github.com/cairndb/cairn/storeurl/postgres"
	_ "github.com/cairndb/cairn/storeurl/remote"
)
