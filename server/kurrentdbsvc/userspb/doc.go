// Package userspb holds the generated code of the KurrentDB protocol's
// Users service (users.proto beside this file), which cairn's server
// serves so that the clients and tools that manage KurrentDB users manage
// cairn's. The official Go client has no users API: a Go program calls
// the service through this package. Regenerate with
//
//	go generate ./server/kurrentdbsvc/userspb
package userspb

//go:generate protoc -I. --go_out=. --go_opt=paths=source_relative --go-grpc_out=. --go-grpc_opt=paths=source_relative users.proto
