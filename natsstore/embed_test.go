package natsstore_test

import (
	"errors"
	"net"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/cairndb/cairn/natsstore"
)

// A second node started with a running node's addresses is refused with
// the cause, not left waiting for a server that cannot start.
func TestStartServerOnATakenPort(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for _, o := range []natsstore.ServerOptions{
		{Dir: filepath.Join(t.TempDir(), "nats"), Listen: l.Addr().String()},
		{Dir: filepath.Join(t.TempDir(), "nats"), Listen: "127.0.0.1:0", ClusterListen: l.Addr().String()},
	} {
		s, err := natsstore.StartServer(o)
		if err == nil {
			s.Shutdown()
			t.Fatalf("%+v: started on a taken port", o)
		}
		if !errors.Is(err, syscall.EADDRINUSE) {
			t.Errorf("%+v: %v, want an error that says the address is in use", o, err)
		}
	}
}
