// Package umadbv1 is UmaDB's gRPC API (umadb.v1, its DCB service),
// generated from UmaDB's own protocol definition so that UmaDB's clients
// can talk to a cairn server unchanged (see package umadbsvc, which serves
// it).
//
// # Where it comes from
//
// umadb.proto is UmaDB's umadb-proto/proto/v1/umadb.proto, from the
// repository github.com/umadb-io/umadb at commit
// 05d8e9c7d96590a673cc149b312e86cbb1d88779 (UmaDB 0.1.x), copied
// unchanged: its package, messages, fields and service are exactly
// UmaDB's. UmaDB is licensed "MIT OR Apache-2.0" (the license field of its
// Cargo workspace, github.com/umadb-io/umadb/Cargo.toml); the definition
// is used here under those terms, and its copyright stays with the UmaDB
// authors. cairn wrote none of umadb.proto, and all of the generated
// files' Go is protoc's.
//
// The proto has no go_package option, so the Go package is given on the
// command line. Regenerate with protoc 3.21.12, protoc-gen-go v1.36.12 and
// protoc-gen-go-grpc 1.6.2 (the versions cairn.v1 is generated with):
//
//	go generate ./api/umadbv1
//
// # Positions
//
// UmaDB numbers events from 1; cairn from 0. An UmaDB position is cairn's
// position plus one, in both directions: package umadbsvc converts them.
package umadbv1

//go:generate protoc -I. --go_out=. --go_opt=paths=source_relative --go_opt=Mumadb.proto=github.com/cairndb/cairn/api/umadbv1;umadbv1 --go-grpc_out=. --go-grpc_opt=paths=source_relative --go-grpc_opt=Mumadb.proto=github.com/cairndb/cairn/api/umadbv1;umadbv1 umadb.proto
