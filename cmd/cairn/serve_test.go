package main

import (
	"context"
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/internal/freeport"
	"github.com/cairndb/cairn/server"
	"github.com/cairndb/cairn/storeurl"
	"github.com/google/uuid"
	"github.com/kurrent-io/KurrentDB-Client-Go/kurrentdb"
)

// buildCairn builds the command once per test binary.
func buildCairn(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "cairn")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// freeAddr is a loopback address free for a process the test starts.
func freeAddr(t *testing.T) string {
	t.Helper()
	addr, err := freeport.Addr()
	if err != nil {
		t.Fatal(err)
	}
	return addr
}

// startServe runs `cairn serve` on the embedded engine in dir, over TLS
// with certs (the official Go client sends credentials only over TLS), and
// waits until /health answers.
func startServe(t *testing.T, bin, dir string, certs server.CertFiles) (*exec.Cmd, string) {
	t.Helper()
	grpcAddr, httpAddr := freeAddr(t), freeAddr(t)
	cmd := exec.Command(bin, "serve", "--store", dir, "--listen", grpcAddr, "--http-listen", httpAddr,
		"--tls-cert", certs.NodeCert, "--tls-key", certs.NodeKey)
	logs := &syncBuffer{}
	cmd.Stderr = logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("cairn serve logged:\n%s", logs)
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + httpAddr + "/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return cmd, grpcAddr
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("cairn serve did not become healthy: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// devCerts makes a development CA and node certificate for a test.
func devCerts(t *testing.T) server.CertFiles {
	t.Helper()
	certs, err := server.GenerateCerts(t.TempDir(), server.CertOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return certs
}

func appendThroughClient(t *testing.T, addr string, certs server.CertFiles, n int) []uuid.UUID {
	t.Helper()
	cfg, err := kurrentdb.ParseConnectionString("kurrentdb://admin:changeit@" + addr + "?tls=true&tlscafile=" + certs.CACert)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Logger = kurrentdb.NoopLogging()
	client, err := kurrentdb.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	var ids []uuid.UUID
	for i := range n {
		id := uuid.New()
		_, err := client.AppendToStream(context.Background(), "orders", kurrentdb.AppendToStreamOptions{},
			kurrentdb.EventData{EventID: id, EventType: "OrderPlaced", ContentType: kurrentdb.ContentTypeJson, Data: fmt.Appendf(nil, `{"n":%d}`, i)})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	return ids
}

// wantEvents reopens the store in dir and checks that it holds exactly the
// acknowledged events, in order.
func wantEvents(t *testing.T, dir string, ids []uuid.UUID) {
	t.Helper()
	store, err := storeurl.Open(context.Background(), dir, storeurl.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	events, err := store.ReadStream(context.Background(), "orders", 0, 1000, cairn.Forward)
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != len(ids) {
		t.Fatalf("the store holds %d events, %d were acknowledged", len(events), len(ids))
	}
	for i, e := range events {
		if e.ID != ids[i] || e.Version != int64(i) {
			t.Fatalf("event %d is %v at version %d, want %v", i, e.ID, e.Version, ids[i])
		}
	}
}

// The README's main command: serve the embedded engine, stop on SIGTERM
// with a clean close, and keep every acknowledged append — also through a
// kill -9.
func TestServeEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the cairn binary")
	}
	bin := buildCairn(t)
	dir := filepath.Join(t.TempDir(), "cairn-data")
	certs := devCerts(t)

	cmd, addr := startServe(t, bin, dir, certs)
	ids := appendThroughClient(t, addr, certs, 20)
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("cairn serve after SIGTERM: %v, want a clean exit", err)
	}
	wantEvents(t, dir, ids)

	cmd, addr = startServe(t, bin, dir, certs)
	ids = append(ids, appendThroughClient(t, addr, certs, 20)...)
	if err := cmd.Process.Kill(); err != nil { // SIGKILL: no chance to flush
		t.Fatal(err)
	}
	cmd.Wait()
	wantEvents(t, dir, ids)
}
