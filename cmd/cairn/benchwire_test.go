package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// cairn bench with the wire workloads starts cairn serve on a new store
// beside the run's own, over TLS, reports each figure beside the same
// workload in process, with the server's CPU per event, and removes both
// stores afterwards.
func TestBenchWire(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the cairn binary")
	}
	bin := cairnBinary(t)
	dir := t.TempDir()
	for _, tc := range []struct {
		name  string
		args  []string
		want  []string
		notes []string // in the progress, on stderr
	}{
		{"tls", nil, []string{"(TLS)", "K1   2 appenders, 1 connection: throughput", "K2   2 appenders, 2 connections: server CPU/event", "K3   BatchAppend, appends of 1000: throughput", "K4   read all", "K5   live delivery: delay p99"},
			// The server's commit counts, from its metrics, beside the
			// store's own in process: 2 appenders × 3 appends each.
			[]string{"K1 wire commits: 6 writes in ", "K1 in process commits: 6 writes in ", "K2 wire commits: 6 writes in "}},
		{"plaintext", []string{"--insecure"}, []string{"(plaintext)", "K1   2 appenders, 1 connection: throughput", "K4   skipped"}, nil},
		{"floor", []string{"--grpc-floor"}, []string{"K1   2 appenders, 1 connection: gRPC floor", "K2   2 appenders, 2 connections: wire vs gRPC floor", "K2   2 appenders, 2 connections: gRPC floor CPU/event"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"bench", "--store", dir, "--workloads", "K1,K2,K3,K4,K5", "--k-appenders", "2", "--k-appends", "3", "--k-events", "2000"}, tc.args...)
			var stderr strings.Builder
			cmd := exec.Command(bin, args...)
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("cairn %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr.String())
			}
			for _, w := range tc.want {
				if !strings.Contains(string(out), w) {
					t.Errorf("no %q in the report:\n%s", w, out)
				}
			}
			for _, w := range tc.notes {
				if !strings.Contains(stderr.String(), w) {
					t.Errorf("no %q in the progress:\n%s", w, stderr.String())
				}
			}
			if left, err := os.ReadDir(dir); err != nil || len(left) != 0 {
				t.Errorf("left in the store's directory: %v %v", left, err)
			}
		})
	}
}

// The flags of the server bench starts are refused without a wire
// workload, and with a server of the user's.
func TestBenchWireFlags(t *testing.T) {
	c := newCLI(t)
	if _, err := c.run("", "bench", "--store", "memory:", "--workloads", "W1", "--insecure"); err == nil || !strings.Contains(err.Error(), "--workloads K1") {
		t.Errorf("--insecure without a wire workload: %v", err)
	}
	if _, err := c.run("", "bench", "--server", "cairn://127.0.0.1:1", "--store", "memory:", "--workloads", "K1", "--serve-binary", "/bin/false"); err == nil || !strings.Contains(err.Error(), "beside the one --server names") {
		t.Errorf("--serve-binary with --server: %v", err)
	}
	if _, err := c.run("", "bench", "--store", "memory:", "--workloads", "W1", "--grpc-floor"); err == nil || !strings.Contains(err.Error(), "--workloads K1") {
		t.Errorf("--grpc-floor without a wire workload: %v", err)
	}
	if _, err := c.run("", "bench", "--store", "cairn://127.0.0.1:1", "--workloads", "K1"); err == nil || !strings.Contains(err.Error(), "name the server with --server") {
		t.Errorf("a server as --store: %v", err)
	}
}

// With --server, the wire workloads reach that server, their in-process
// twins run on --store, and the streams written to the server (all with
// the run's prefix) are deleted afterwards.
func TestBenchWireServer(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the cairn binary")
	}
	bin := cairnBinary(t)
	certs := devCerts(t)
	served := t.TempDir()
	_, addr := startServe(t, bin, served, certs)
	url := "cairn://admin:changeit@" + addr + "?tls=true&tlsCAFile=" + certs.CACert
	args := []string{"bench", "--server", url, "--store", t.TempDir(), "--workloads", "K1,K3", "--k-appenders", "2", "--k-appends", "3", "--k-events", "2000"}
	out, err := exec.Command(bin, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("cairn %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	for _, w := range []string{"# wire workloads: " + addr + " (TLS)", "K1   2 appenders, 1 connection: throughput", "K3   BatchAppend, 2 appenders: throughput", "deleted the"} {
		if !strings.Contains(string(out), w) {
			t.Errorf("no %q in the output:\n%s", w, out)
		}
	}
	if strings.Contains(string(out), "server CPU/event") {
		t.Errorf("the CPU of a server bench did not start is not known:\n%s", out)
	}
	list, err := exec.Command(bin, "streams", "--server", url).CombinedOutput()
	if err != nil {
		t.Fatalf("cairn streams: %v\n%s", err, list)
	}
	for _, s := range strings.Fields(string(list)) {
		if !strings.HasPrefix(s, "$") {
			t.Errorf("the run left stream %s on the server", s)
		}
	}
}
