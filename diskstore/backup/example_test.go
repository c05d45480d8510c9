package backup_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/diskstore"
	"github.com/cairndb/cairn/diskstore/backup"
)

// Back up a store while it is open, restore the backup into a new
// directory, and check the restored store.
func Example() {
	ctx := context.Background()
	base, err := os.MkdirTemp("", "cairn-backup-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(base)

	db, err := diskstore.Open(filepath.Join(base, "store"), diskstore.Options{})
	if err != nil {
		log.Fatal(err)
	}
	store := cairn.NewStore(db, cairn.Options{})
	defer store.Close()
	if _, err := store.Append(ctx, "order-1", cairn.NoStream, cairn.EventData{Type: "OrderPlaced", Data: []byte(`{"total":42}`)}); err != nil {
		log.Fatal(err)
	}

	// The backup: a new generation of the set in backups/.
	set, err := backup.OpenSet(filepath.Join(base, "backups"))
	if err != nil {
		log.Fatal(err)
	}
	b, err := db.BeginBackup(ctx) // appends may go on meanwhile
	if err != nil {
		log.Fatal(err)
	}
	res, err := set.Write(ctx, b, backup.Options{})
	if err != nil {
		log.Fatal(err)
	}
	if err := b.Close(); err != nil {
		log.Fatal(err)
	}
	if err := set.Close(); err != nil {
		log.Fatal(err)
	}
	fmt.Println("generation", res.Manifest.Generation, "holds the events before position", res.Manifest.Head)

	// The restore, into a directory of its own, and its check.
	restored := filepath.Join(base, "restored")
	if _, err := backup.Restore(ctx, filepath.Join(base, "backups"), restored, backup.RestoreOptions{}); err != nil {
		log.Fatal(err)
	}
	report, err := diskstore.Check(ctx, restored, diskstore.CheckOptions{})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("restored store sound:", report.OK(), "with", report.Events, "event")
	// Output:
	// generation 1 holds the events before position 1
	// restored store sound: true with 1 event
}
