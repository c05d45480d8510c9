// Package operationspb holds the generated code of the scavenge calls of the
// KurrentDB protocol's Operations service (operations.proto beside this
// file), which cairn's server serves so that the official clients can start
// and stop a scavenge. Regenerate with
//
//	go generate ./server/kurrentdb/operationspb
package operationspb

//go:generate protoc -I. --go_out=. --go_opt=paths=source_relative --go-grpc_out=. --go-grpc_opt=paths=source_relative operations.proto
