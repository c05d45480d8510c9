package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/api/cairnv1/cairnsvc"
	"github.com/cairndb/cairn/export"
	"github.com/cairndb/cairn/internal/buildinfo"
	"github.com/cairndb/cairn/memstore"
	"github.com/cairndb/cairn/pgstore/pgtest"
	"github.com/cairndb/cairn/server"
	"github.com/cairndb/cairn/storeurl"
	"github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/serverfeatures"
	"github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/shared"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
)

// cairnCmd runs cairn in this process with the real way of opening stores,
// and returns standard output, standard error and the error.
func cairnCmd(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	cmd := newRootCmd()
	var out, errOut bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SetIn(strings.NewReader(""))
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(context.Background())
	return out.String(), errOut.String(), err
}

func mustCairn(t *testing.T, args ...string) (string, string) {
	t.Helper()
	out, errOut, err := cairnCmd(t, args...)
	if err != nil {
		t.Fatalf("cairn %s: %v\n%s", strings.Join(args, " "), err, errOut)
	}
	return out, errOut
}

// listing returns the names under dir, or nil when it does not exist.
func listing(t *testing.T, dir string) []string {
	t.Helper()
	var names []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		names = append(names, p)
		return nil
	})
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return names
}

// Read-only commands never create a store: on a missing directory, on a
// directory of other files, or with a server address without its scheme,
// they refuse with a message that says what to do.
func TestReadOnlyCommandsNeverCreateAStore(t *testing.T) {
	base := t.TempDir()
	missing := filepath.Join(base, "cairn-data")
	other := filepath.Join(base, "photos")
	if err := os.MkdirAll(other, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(other, "cat.jpg"), []byte("meow"), 0o644); err != nil {
		t.Fatal(err)
	}
	otherBefore := listing(t, other)
	wd, _ := os.Getwd()
	cwdBefore := listing(t, wd)
	for _, command := range [][]string{{"read"}, {"read", "s"}, {"streams"}, {"stats"}, {"tail", "--count", "1"}, {"export"}} {
		for _, tc := range []struct {
			flags []string
			want  string
		}{
			{[]string{"--store", missing}, "no store at " + missing + ": the directory does not exist"},
			{[]string{"--store", other}, "no store at " + other + ": the directory holds no cairn store"},
			{[]string{"--server", "127.0.0.1:2113"}, "use --server cairn://127.0.0.1:2113"},
			{[]string{"--server", "localhost:2113"}, "use --server cairn://localhost:2113"},
			{[]string{"--server", "./cairn-data"}, "is not a server URL: use cairn://host:port"},
			{[]string{"--store", "127.0.0.1:2113"}, "looks like a server's address: use --server cairn://127.0.0.1:2113"},
		} {
			args := append(slices.Clone(command), tc.flags...)
			_, _, err := cairnCmd(t, args...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("cairn %s: %v, want an error containing %q", strings.Join(args, " "), err, tc.want)
			}
		}
	}
	if l := listing(t, missing); l != nil {
		t.Fatalf("a read-only command created %v", l)
	}
	if l := listing(t, other); !slices.Equal(l, otherBefore) {
		t.Fatalf("a read-only command changed %s: %v", other, l)
	}
	if l := listing(t, wd); !slices.Equal(l, cwdBefore) {
		t.Fatalf("a read-only command changed the working directory: %v", l)
	}
}

// The read-only commands read a store they cannot write to (read-only
// media): run as an unprivileged user on a directory it may only read.
func TestReadOnlyCommandsOnReadOnlyMedia(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the cairn binary")
	}
	bin := cairnBinary(t)
	dir := filepath.Join(readableTempDir(t), "data")
	mustCairn(t, "append", "order-1", "OrderPlaced", `{"total":42}`, "--store", dir)
	mustCairn(t, "append", "order-2", "OrderPlaced", `{"total":7}`, "--store", dir)
	before := listing(t, dir)
	run := func(args ...string) (string, error) {
		cmd := exec.Command(bin, append(args, "--store", dir)...)
		if os.Geteuid() == 0 {
			// Root writes anywhere: drop to nobody, for whom the store
			// is read-only.
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		} else {
			chmodTree(t, dir, 0o555, 0o444)
			t.Cleanup(func() { chmodTree(t, dir, 0o755, 0o644) })
		}
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := run("read", "order-1"); err != nil || !strings.Contains(out, `"total":42`) {
		t.Fatalf("read on read-only media: %v\n%s", err, out)
	}
	// The index, read through a mapping of the log's segments.
	if out, err := run("read", "--category", "order"); err != nil || !strings.Contains(out, `"total":42`) || !strings.Contains(out, `"total":7`) {
		t.Fatalf("read --category on read-only media: %v\n%s", err, out)
	}
	if out, err := run("streams"); err != nil || out != "order-1\norder-2\n" {
		t.Fatalf("streams on read-only media: %v\n%s", err, out)
	}
	if out, err := run("stats"); err != nil || !strings.Contains(out, `"events": 2`) || !strings.Contains(out, `"healthy": true`) {
		t.Fatalf("stats on read-only media: %v\n%s", err, out)
	}
	if out, err := run("export"); err != nil || !strings.Contains(out, `{"end":{"events":2,"streams":2}}`) {
		t.Fatalf("export on read-only media: %v\n%s", err, out)
	}
	if out, err := run("append", "order-3", "E", "{}"); err == nil {
		t.Fatalf("append on read-only media succeeded:\n%s", out)
	}
	if after := listing(t, dir); !slices.Equal(before, after) {
		t.Fatalf("the store's files changed: %v, then %v", before, after)
	}
}

// readableTempDir returns a temporary directory that every user may read
// and enter, as may its parents up to the temporary directory.
func readableTempDir(t *testing.T) string {
	dir := t.TempDir()
	for d := dir; strings.HasPrefix(d, os.TempDir()) && d != os.TempDir(); d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func chmodTree(t *testing.T, dir string, dirMode, fileMode os.FileMode) {
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return os.Chmod(p, dirMode)
		}
		return os.Chmod(p, fileMode)
	})
}

// The CLI run against a directory a server holds says so, and names
// --server.
func TestDirectoryHeldByAServer(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the cairn binary")
	}
	bin := cairnBinary(t)
	dir := filepath.Join(t.TempDir(), "cairn-data")
	certs := devCerts(t)
	_, addr := startServe(t, bin, dir, certs)
	// Through the server, stats names the server, not the default store.
	server := "cairn://admin:changeit@" + addr + "?tls=true&tlsCAFile=" + certs.CACert
	out, _ := mustCairn(t, "stats", "--server", server)
	var st stats
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatal(err)
	}
	if want := "cairn://admin:xxxxx@" + addr; !strings.HasPrefix(st.Store, want) || !st.Healthy {
		t.Errorf("cairn stats --server %s: %+v; want the store named %s…", storeurl.Redact(server), st, want)
	}
	for _, args := range [][]string{{"read"}, {"stats"}, {"export"}, {"append", "s", "E", "{}"}, {"import", "-"}} {
		_, _, err := cairnCmd(t, append(args, "--store", dir)...)
		if err == nil || !strings.Contains(err.Error(), "in use by another process, most likely a running cairn server") ||
			!strings.Contains(err.Error(), "--server cairn://") {
			t.Errorf("cairn %s on a directory a server holds: %v", strings.Join(args, " "), err)
		}
	}
	_, _, err := cairnCmd(t, "serve", "--store", dir, "--listen", "127.0.0.1:0", "--http-listen", "")
	if err == nil || !strings.Contains(err.Error(), "in use by another process, most likely a running cairn server: stop it first") {
		t.Errorf("a second serve of a directory a server holds: %v", err)
	}
}

// Export from the embedded engine, import into another, and into
// PostgreSQL when there is one; export again: the same events, versions,
// states and order. Progress and summaries go to standard error.
func TestExportImport(t *testing.T) {
	base := t.TempDir()
	src := filepath.Join(base, "src")
	mustCairn(t, "append", "order-1", "OrderPlaced", `{"total": 42}`, "--store", src, "--tag", "vip", "--metadata", `{"user":"ada"}`)
	mustCairn(t, "append", "order-1", "OrderPaid", `{}`, "--store", src, "--expected", "0")
	mustCairn(t, "append", "blob", "Raw", "\x00\x01", "--binary", "--store", src)
	mustCairn(t, "append", "order-2", "OrderPlaced", `{"total":7}`, "--store", src)
	file := filepath.Join(base, "export.jsonl")
	_, errOut := mustCairn(t, "export", "-o", file, "--store", src)
	if !strings.Contains(errOut, "export: 4 events") || !strings.Contains(errOut, file+" holds 4 events of 3 streams") {
		t.Fatalf("export printed %q", errOut)
	}
	if _, _, err := cairnCmd(t, "export", "-o", file, "--store", src); err == nil || !strings.Contains(err.Error(), "exists: pass --force") {
		t.Fatalf("export over an existing file: %v", err)
	}
	first, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	targets := []string{filepath.Join(base, "dst")}
	if os.Getenv(pgtest.EnvURL) != "" {
		targets = append(targets, pgtest.URL(t)+"&schema="+pgtest.Schema(t, "cli_import"))
	}
	for _, dst := range targets {
		_, errOut = mustCairn(t, "import", file, "--store", dst)
		if !strings.Contains(errOut, "import: 4 events of 3 streams") {
			t.Fatalf("import printed %q", errOut)
		}
		mustCairn(t, "import", file, "--store", dst) // again: nothing twice
		again, _ := mustCairn(t, "export", "--store", dst)
		if got, want := eventLines(t, again), eventLines(t, string(first)); !slices.Equal(got, want) {
			t.Fatalf("export of %s:\n%s\nwant\n%s", storeurl.Redact(dst), strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	}
	// A stream, by name, to standard output.
	out, _ := mustCairn(t, "export", "--stream", "order-2", "--store", src)
	if got := eventLines(t, out); len(got) != 1 || !strings.Contains(got[0], `"stream":"order-2"`) {
		t.Fatalf("export --stream order-2 = %v", got)
	}
	if _, _, err := cairnCmd(t, "import", filepath.Join(base, "nope.jsonl"), "--store", src); err == nil {
		t.Fatal("import of a missing file succeeded")
	}
}

// eventLines returns the event lines of an export without what the target
// assigns (positions are kept as their order; creation times go).
func eventLines(t *testing.T, exp string) []string {
	t.Helper()
	var out []string
	for l := range strings.Lines(exp) {
		var e export.Event
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			t.Fatal(err)
		}
		if e.ID == "" {
			continue
		}
		e.Position, e.Created = uint64(len(out)), time.Time{}
		b, _ := json.Marshal(e)
		out = append(out, string(b))
	}
	return out
}

// bench honours --server, refuses unknown workloads, and deletes what it
// wrote to the server.
func TestBenchAgainstAServer(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	store := memstore.Open()
	if _, err := store.Append(context.Background(), "mine", cairn.NoStream, cairn.EventData{Type: "Kept", Data: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	cairnsvc.Register(srv, store, cairnsvc.Options{})
	go srv.Serve(lis)
	defer srv.Stop()
	wd, _ := os.Getwd()
	before := listing(t, wd)

	if _, _, err := cairnCmd(t, "bench", "--workloads", "W1,W9", "--server", "cairn://"+lis.Addr().String()); err == nil ||
		!strings.Contains(err.Error(), `unknown workload "W9": the workloads are W1, W2, W3, W4, W5, W6`) {
		t.Fatalf("bench --workloads W1,W9: %v", err)
	}
	out, errOut := mustCairn(t, "bench", "--server", "cairn://"+lis.Addr().String(), "--no-baseline",
		"--workloads", "W1,W2,W3,W4,W5", "--w1-appends", "20", "--w2-writers", "2", "--w2-appends", "5",
		"--w3-events", "2000", "--w4-writers", "2", "--w4-commits", "10", "--events", "3000")
	if !strings.Contains(out, "W5   read all") || !strings.Contains(errOut, "bench: deleted the ") {
		t.Fatalf("bench printed:\n%s\n%s", out, errOut)
	}
	// The report says how busy the machine was, at its start and its end.
	if _, err := os.Stat("/proc/loadavg"); err == nil {
		first, _, _ := strings.Cut(out, "\n")
		if !strings.Contains(first, ", load average ") || !regexp.MustCompile(`(?m)^# load average [0-9.]+ at the end$`).MatchString(out) {
			t.Errorf("bench's report does not give the load average at its start and its end:\n%s", out)
		}
	}
	var live []string
	for id, err := range store.Streams(context.Background()) {
		if err != nil {
			t.Fatal(err)
		}
		if id == cairn.DeletionsStream { // the records of bench's deletes
			continue
		}
		live = append(live, id)
	}
	if !slices.Equal(live, []string{"mine"}) {
		t.Fatalf("after bench the server holds streams %v, want only mine", live)
	}
	if l := listing(t, wd); !slices.Equal(l, before) {
		t.Fatalf("bench --server wrote to the working directory: %v", l)
	}
}

func TestCertsFlags(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--validity", "-5d"}, `"-5d": must be positive`},
		{[]string{"--validity", "-1h"}, `"-1h": must be positive`},
		{[]string{"--validity", "soon"}, `"soon" is not a number of days (30d) or a duration (720h)`},
		{[]string{"--host", "bad host"}, `--host "bad host": not a DNS name or an IP address`},
		{[]string{"--host", "-x.example"}, `not a DNS name or an IP address`},
		{[]string{"--host", "db.internal:2113"}, `give the host without the port: --host db.internal`},
	} {
		_, _, err := cairnCmd(t, append([]string{"certs", "--dir", dir}, tc.args...)...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("certs %s: %v, want %q", strings.Join(tc.args, " "), err, tc.want)
		}
	}
	if l := listing(t, dir); len(l) != 1 {
		t.Fatalf("refused certs wrote %v", l)
	}
	out, _ := mustCairn(t, "certs", "--dir", dir, "--validity", "30d", "--host", "db.internal", "--host", "10.0.0.7", "--host", "*.example.com")
	if !strings.Contains(out, "tlsCAFile="+filepath.Join(dir, "ca.crt")) {
		t.Fatalf("certs printed:\n%s", out)
	}
	cert := readCert(t, filepath.Join(dir, "node.crt"))
	if d := cert.NotAfter.Sub(cert.NotBefore); d < 30*24*time.Hour || d > 30*24*time.Hour+time.Hour {
		t.Fatalf("--validity 30d made a certificate valid for %s", d)
	}
	if !slices.Contains(cert.DNSNames, "db.internal") || !slices.Contains(cert.DNSNames, "*.example.com") {
		t.Fatalf("node certificate names %v", cert.DNSNames)
	}
	if _, _, err := cairnCmd(t, "certs", "--dir", dir); err == nil || !strings.Contains(err.Error(), "exists: pass --force") {
		t.Fatalf("certs over existing files: %v", err)
	}
	mustCairn(t, "certs", "--dir", dir, "--force", "--validity", "720h")

	// --user makes client certificates with the CA in --dir.
	out, _ = mustCairn(t, "certs", "--dir", dir, "--user", "ada", "--user", "bob")
	if !strings.Contains(out, filepath.Join(dir, "user-ada.crt")) || !strings.Contains(out, "userCertFile") {
		t.Fatalf("certs --user printed:\n%s", out)
	}
	user := readCert(t, filepath.Join(dir, "user-bob.crt"))
	if user.Subject.CommonName != "bob" || !slices.Equal(user.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}) {
		t.Fatalf("bob's certificate: CN %q, extended key usage %v", user.Subject.CommonName, user.ExtKeyUsage)
	}
	if _, _, err := cairnCmd(t, "certs", "--dir", t.TempDir(), "--user", "ada"); err == nil || !strings.Contains(err.Error(), "ca.crt") {
		t.Fatalf("certs --user without a CA: %v", err)
	}
}

func readCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(b)
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestServeFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--listen", "2242"}, "--listen 2242: the host is missing: use 127.0.0.1:2242"},
		{[]string{"--http-listen", "2243"}, "--http-listen 2243: the host is missing"},
		{[]string{"--listen", "localhost:http2"}, `port "http2" is not a number`},
	} {
		_, _, err := cairnCmd(t, append([]string{"serve", "--store", "memory:"}, tc.args...)...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("serve %s: %v, want %q", strings.Join(tc.args, " "), err, tc.want)
		}
	}
}

// The connection string serve logs with TLS names the CA certificate where
// it is.
func TestServeNamesTheRealCAFile(t *testing.T) {
	dir := t.TempDir()
	mustCairn(t, "certs", "--dir", dir)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cmd := newRootCmd()
	logs := &syncBuffer{}
	cmd.SetErr(logs)
	cmd.SetOut(logs)
	cmd.SetArgs([]string{"serve", "--store", "memory:", "--listen", "127.0.0.1:0", "--http-listen", "",
		"--tls-cert", filepath.Join(dir, "node.crt"), "--tls-key", filepath.Join(dir, "node.key")})
	done := make(chan error, 1)
	go func() { done <- cmd.ExecuteContext(ctx) }()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(logs.String(), "cairn serving") {
		if time.Now().After(deadline) {
			t.Fatalf("serve did not start:\n%s", logs)
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("serve: %v", err)
	}
	if want := "tlsCAFile=" + filepath.Join(dir, "ca.crt"); !strings.Contains(logs.String(), want) {
		t.Fatalf("serve logged no %q:\n%s", want, logs)
	}
}

// --server takes KurrentDB's spelling of the CA parameter.
func TestServerURLTakesKurrentDBSpelling(t *testing.T) {
	_, _, err := cairnCmd(t, "read", "--server", "cairn://127.0.0.1:2113?tls=true&tlsCAFile=/nonexistent/ca.crt")
	if err == nil || !strings.Contains(err.Error(), "tlscafile: open /nonexistent/ca.crt") {
		t.Fatalf("--server with tlsCAFile: %v", err)
	}
}

// cairn version prints the version the server advertises: the one set at
// build time.
func TestVersionIsWhatTheServerAdvertises(t *testing.T) {
	out, _ := mustCairn(t, "version")
	if !strings.HasPrefix(out, "cairn "+buildinfo.Version()+" (server version "+buildinfo.Advertised()+")") {
		t.Fatalf("version = %q, the server advertises %q", out, buildinfo.Advertised())
	}
	if testing.Short() {
		return
	}
	bin := filepath.Join(t.TempDir(), "cairn")
	if b, err := exec.Command("go", "build", "-ldflags", "-X github.com/cairndb/cairn/internal/buildinfo.version=v9.8.7", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
	v, err := exec.Command(bin, "version").Output()
	if err != nil || !strings.HasPrefix(string(v), "cairn v9.8.7 (server version 26.1.0-cairn-v9.8.7)") {
		t.Fatalf("cairn version = %q, %v", v, err)
	}
	certs := devCerts(t)
	_, addr := startServe(t, bin, filepath.Join(t.TempDir(), "data"), certs)
	pool, err := server.LoadCertPool(certs.CACert)
	if err != nil {
		t.Fatal(err)
	}
	// Server features need no credentials.
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: pool})))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	m, err := serverfeatures.NewServerFeaturesClient(conn).GetSupportedMethods(context.Background(), &shared.Empty{})
	if err != nil || m.EventStoreServerVersion != "26.1.0-cairn-v9.8.7" {
		t.Fatalf("the server advertises %q, %v", m.GetEventStoreServerVersion(), err)
	}
}

// The README tells a new user how to get the binary.
func TestReadmeSaysHowToGetTheBinary(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"go install github.com/cairndb/cairn/cmd/cairn@latest", "go build -o cairn ./cmd/cairn"} {
		if !bytes.Contains(b, []byte(want)) {
			t.Errorf("README.md does not say %q", want)
		}
	}
}

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// cairnBinary builds the command once for the whole test binary, in a
// directory every user may read.
func cairnBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "cairn-bin-")
		if err != nil {
			binErr = err
			return
		}
		os.Chmod(dir, 0o755)
		binPath = filepath.Join(dir, "cairn")
		if out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput(); err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binPath != "" {
		os.RemoveAll(filepath.Dir(binPath))
	}
	if natsBinPath != "" {
		os.RemoveAll(filepath.Dir(natsBinPath))
	}
	os.Exit(code)
}
