// Package cairnv1 is cairn's own gRPC API (proto package cairn.v1, defined
// in cairn.proto beside this file): the whole storage contract over the
// network, plus what the KurrentDB protocol lacks — tags, snapshots,
// truncation, stream listing, read models and statistics. The server serves it
// on the same port as the KurrentDB protocol; package remotestore is its
// client, a cairn engine whose storage is a cairn server.
//
// Besides the generated code, the package converts between cairn's types and
// the wire messages, and maps cairn's typed errors onto gRPC statuses and
// back, so that errors.Is and errors.As work across the network.
//
// Regenerate the code after changing cairn.proto with
//
//	go generate ./api/cairnv1
//
// which needs protoc, protoc-gen-go and protoc-gen-go-grpc on PATH.
package cairnv1

//go:generate protoc -I. --go_out=. --go_opt=paths=source_relative --go-grpc_out=. --go-grpc_opt=paths=source_relative cairn.proto
