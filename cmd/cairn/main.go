// Command cairn runs and operates the cairn event store.
//
//	cairn serve                      serve ./cairn-data on 127.0.0.1:2113
//	cairn append STREAM TYPE [DATA]  append an event
//	cairn read [STREAM]              read a stream, or the global log, as JSON lines
//	cairn streams                    list streams
//	cairn stats                      show what a store holds
//	cairn tail [STREAM]              follow new events as JSON lines
//	cairn export / import FILE       the log as JSON lines, into any engine
//	cairn backup DEST                back up the embedded engine, online, incrementally
//	cairn restore BACKUP DIR         restore a backup into a new directory
//	cairn check [DIR]                verify the embedded engine's store offline
//	cairn certs                      make a development CA and node certificate
//	cairn bench                      measure the engine against a raw baseline
//	cairn version                    print the version
//
// Every command that opens a store takes --store: memory:, a directory (the
// embedded engine, the default ./cairn-data) or postgres://….
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	if os.Getenv("GOGC") == "" {
		paceGC()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := newRootCmd().ExecuteContext(ctx); err != nil {
		if !errors.Is(err, errSilent) {
			fmt.Fprintln(os.Stderr, "cairn:", err)
		}
		os.Exit(1)
	}
}
