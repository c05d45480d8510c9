package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kurrent-io/KurrentDB-Client-Go/kurrentdb"
)

// runningServe is a `cairn serve` run in-process until its context ends.
type runningServe struct {
	out, logs *syncBuffer
	cancel    context.CancelFunc
	done      chan error
}

// serveInProcess runs cairn serve with args and waits until it has
// printed its connection strings.
func serveInProcess(t *testing.T, args ...string) *runningServe {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &runningServe{out: &syncBuffer{}, logs: &syncBuffer{}, cancel: cancel, done: make(chan error, 1)}
	cmd := newRootCmd()
	cmd.SetOut(r.out)
	cmd.SetErr(r.logs)
	cmd.SetArgs(append([]string{"serve", "--listen", "127.0.0.1:0", "--http-listen", ""}, args...))
	go func() { r.done <- cmd.ExecuteContext(ctx) }()
	t.Cleanup(func() { r.stop(t) })
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(r.out.String(), "--server") {
		select {
		case err := <-r.done:
			r.done <- err
			t.Fatalf("serve %s ended: %v\n%s", strings.Join(args, " "), err, r.logs)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve %s printed no connection string:\n%s\n%s", strings.Join(args, " "), r.out, r.logs)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return r
}

// stop ends the serve, once.
func (r *runningServe) stop(t *testing.T) {
	t.Helper()
	if r.cancel == nil {
		return
	}
	r.cancel()
	r.cancel = nil
	if err := <-r.done; err != nil {
		t.Errorf("serve: %v\n%s", err, r.logs)
	}
}

var (
	kurrentURL = regexp.MustCompile(`kurrentdb://\S+`)
	cairnURL   = regexp.MustCompile(`--server '(cairn://[^']+)'`)
)

// urls returns the connection strings serve printed: the KurrentDB
// clients' and the --server URL of cairn's commands.
func urls(t *testing.T, out string) (kurrent, cairn string) {
	t.Helper()
	k, c := kurrentURL.FindString(out), cairnURL.FindStringSubmatch(out)
	if k == "" || c == nil {
		t.Fatalf("serve printed no connection strings:\n%s", out)
	}
	return k, c[1]
}

// useThroughGoClient appends to a stream through the official Go client
// connected with conn, and reads it back.
func useThroughGoClient(t *testing.T, conn, stream string) error {
	t.Helper()
	cfg, err := kurrentdb.ParseConnectionString(conn)
	if err != nil {
		return err
	}
	cfg.Logger = kurrentdb.NoopLogging()
	client, err := kurrentdb.NewClient(cfg)
	if err != nil {
		return err
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := client.AppendToStream(ctx, stream, kurrentdb.AppendToStreamOptions{},
		kurrentdb.EventData{EventType: "OrderPlaced", ContentType: kurrentdb.ContentTypeJson, Data: []byte(`{"total":42}`)}); err != nil {
		return fmt.Errorf("append: %w", err)
	}
	rs, err := client.ReadStream(ctx, stream, kurrentdb.ReadStreamOptions{}, 10)
	if err != nil {
		return fmt.Errorf("read: %w", err)
	}
	defer rs.Close()
	e, err := rs.Recv()
	if err != nil {
		return fmt.Errorf("read: %w", err)
	}
	if e.Event.EventType != "OrderPlaced" {
		return fmt.Errorf("read %s, want OrderPlaced", e.Event.EventType)
	}
	return nil
}

// cairn serve on a directory, with no TLS flag, makes a development CA and
// certificate in the directory, serves TLS with them and prints the
// connection strings that trust them, which the official Go client and
// cairn's commands use as printed; a second start keeps the same CA.
func TestServeMakesADevelopmentCertificate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cairn-data")
	r := serveInProcess(t, "--store", dir)
	kurrent, cairn := urls(t, r.out.String())
	ca := filepath.Join(dir, "certs", "ca.crt")
	if want := "?tls=true&tlsCAFile=" + ca; !strings.HasSuffix(kurrent, want) || !strings.HasSuffix(cairn, want) {
		t.Errorf("serve printed %s and %s, want both to end with %s", kurrent, cairn, want)
	}
	if !strings.HasPrefix(kurrent, "kurrentdb://admin:changeit@localhost:") {
		t.Errorf("serve printed %s, want the admin's default credentials and localhost", kurrent)
	}
	for name, perm := range map[string]os.FileMode{"ca.crt": 0o644, "ca.key": 0o600, "node.crt": 0o644, "node.key": 0o600} {
		fi, err := os.Stat(filepath.Join(dir, "certs", name))
		if err != nil {
			t.Errorf("the development certificate's %s: %v", name, err)
		} else if fi.Mode().Perm() != perm {
			t.Errorf("%s has mode %v, want %v", name, fi.Mode().Perm(), perm)
		}
	}
	if err := useThroughGoClient(t, kurrent, "order-1"); err != nil {
		t.Fatalf("the official Go client with %s: %v", kurrent, err)
	}
	out, _, err := cairnCmd(t, "read", "order-1", "--server", cairn)
	if err != nil || !strings.Contains(out, `"type":"OrderPlaced"`) {
		t.Fatalf("cairn read --server %s: %v\n%s", cairn, err, out)
	}
	first, err := os.ReadFile(ca)
	if err != nil {
		t.Fatal(err)
	}
	r.stop(t)

	r = serveInProcess(t, "--store", dir)
	if again, _ := urls(t, r.out.String()); again[strings.Index(again, "?"):] != kurrent[strings.Index(kurrent, "?"):] {
		t.Errorf("a second start printed %s, the first %s", again, kurrent)
	}
	if second, err := os.ReadFile(ca); err != nil || !bytes.Equal(first, second) {
		t.Errorf("a second start replaced the CA (%v)", err)
	}
}

// A store that is not a directory keeps the certificate in --certs-dir,
// by default ./cairn-certs.
func TestServeCertsDir(t *testing.T) {
	for store, want := range map[string]string{
		"memory:":                         "./cairn-certs",
		"postgres://u:p@db/cairn":         "./cairn-certs",
		"cairn://admin:p@db:2113":         "./cairn-certs",
		"./cairn-data":                    filepath.Join("cairn-data", "certs"),
		filepath.Join("/var", "lib", "x"): filepath.Join("/var", "lib", "x", "certs"),
	} {
		if got := defaultCertsDir(store); got != want {
			t.Errorf("defaultCertsDir(%q) = %q, want %q", store, got, want)
		}
	}
	certs := filepath.Join(t.TempDir(), "certs")
	r := serveInProcess(t, "--store", "memory:", "--certs-dir", certs)
	kurrent, _ := urls(t, r.out.String())
	if want := "tlsCAFile=" + filepath.Join(certs, "ca.crt"); !strings.HasSuffix(kurrent, want) {
		t.Errorf("serve printed %s, want it to end with %s", kurrent, want)
	}
	if err := useThroughGoClient(t, kurrent, "order-1"); err != nil {
		t.Errorf("the official Go client with %s: %v", kurrent, err)
	}
}

// What serve refuses about TLS, before it listens.
func TestServeTLSRefusals(t *testing.T) {
	partial := t.TempDir()
	if err := os.WriteFile(filepath.Join(partial, "ca.crt"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	other := t.TempDir()
	mustCairn(t, "certs", "--dir", other)
	mismatched := t.TempDir()
	mustCairn(t, "certs", "--dir", mismatched)
	for _, name := range []string{"ca.crt", "ca.key"} {
		data, err := os.ReadFile(filepath.Join(other, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(mismatched, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--listen", "0.0.0.0:0"}, "beyond loopback, with the development certificate"},
		{[]string{"--listen", "0.0.0.0:0", "--insecure"}, "refusing to serve plaintext on 0.0.0.0:0"},
		{[]string{"--certs-dir", partial}, "holds ca.crt but not node.crt, node.key"},
		{[]string{"--certs-dir", mismatched}, "is not a certificate for localhost signed by"},
		{[]string{"--insecure", "--tls-client-ca", filepath.Join(other, "ca.crt")}, "--tls-client-ca needs TLS: drop --insecure"},
		{[]string{"--store", "cairn://127.0.0.1:1"}, "name one in the URL, cairn://admin:PASSWORD@127.0.0.1:1"},
		{[]string{"--insecure", "--certs-dir", other}, "--certs-dir holds the development certificate"},
	} {
		args := append([]string{"serve", "--store", "memory:", "--http-listen", ""}, tc.args...)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		cmd := newRootCmd()
		var out bytes.Buffer
		cmd.SetOut(&out)
		cmd.SetErr(&out)
		cmd.SetArgs(args)
		err := cmd.ExecuteContext(ctx)
		cancel()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("serve %s: %v, want %q", strings.Join(tc.args, " "), err, tc.want)
		}
	}
}

// --insecure serves plaintext and says the Go client cannot use it;
// cairn's commands can, and say what to add to a URL that lacks TLS or a
// user when the server wants them.
func TestServeInsecureAndURLHints(t *testing.T) {
	r := serveInProcess(t, "--store", "memory:", "--insecure")
	kurrent, cairn := urls(t, r.out.String())
	if !strings.HasSuffix(kurrent, "?tls=false") || !strings.Contains(r.out.String(), "the official Go client sends no credentials without TLS") {
		t.Errorf("serve --insecure printed:\n%s", r.out)
	}
	if _, _, err := cairnCmd(t, "append", "s", "E", "{}", "--server", cairn); err != nil {
		t.Errorf("cairn append --server %s: %v", cairn, err)
	}
	host := strings.TrimPrefix(cairn, "cairn://admin:changeit@")
	_, _, err := cairnCmd(t, "read", "--server", "cairn://"+host)
	if err == nil || !strings.Contains(err.Error(), "the server requires a user: cairn://admin:PASSWORD@"+host) {
		t.Errorf("cairn read without a user: %v", err)
	}
	r.stop(t)

	r = serveInProcess(t, "--store", "memory:", "--certs-dir", t.TempDir())
	_, cairn = urls(t, r.out.String())
	plain := cairn[:strings.Index(cairn, "?")]
	_, _, err = cairnCmd(t, "read", "--server", plain)
	if err == nil || !strings.Contains(err.Error(), "the server may speak TLS, as cairn serve does unless --insecure: add ?tls=true&tlsCAFile=") {
		t.Errorf("cairn read over plaintext of a TLS server: %v", err)
	}
}

// The README's main command, as a user runs it: the built binary, in a
// fresh directory, with no flag but the addresses; the official Go
// client connects with the connection string it prints, cairn's own
// commands with the --server URL, and the Node.js client (when node and
// the client are installed) with the same connection string.
func TestServeAsAUserWould(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the cairn binary")
	}
	bin := cairnBinary(t)
	work := t.TempDir()
	cmd := exec.Command(bin, "serve", "--listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0")
	cmd.Dir = work
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
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
	printed := make(chan string, 1)
	go func() {
		var b strings.Builder
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			b.WriteString(sc.Text() + "\n")
			if strings.Contains(sc.Text(), "--server") {
				printed <- b.String()
				break
			}
		}
		io.Copy(io.Discard, stdout)
	}()
	var out string
	select {
	case out = <-printed:
	case <-time.After(time.Minute):
		t.Fatalf("cairn serve printed no connection string:\n%s", logs)
	}
	kurrent, cairn := urls(t, out)
	if want := "tlsCAFile=" + filepath.Join(work, "cairn-data", "certs", "ca.crt"); !strings.HasSuffix(kurrent, want) {
		t.Errorf("cairn serve printed %s, want it to end with %s", kurrent, want)
	}
	if err := useThroughGoClient(t, kurrent, "order-1"); err != nil {
		t.Fatalf("the official Go client with the printed %s: %v", kurrent, err)
	}
	read := exec.Command(bin, "read", "order-1", "--server", cairn)
	if got, err := read.CombinedOutput(); err != nil || !strings.Contains(string(got), `"type":"OrderPlaced"`) {
		t.Fatalf("cairn read --server with the printed URL: %v\n%s", err, got)
	}
	node := nodeScenario(t)
	if node == nil {
		return
	}
	node.Args = append(node.Args, "connect.mjs", kurrent)
	if got, err := node.CombinedOutput(); err != nil || string(got) != "appended order-2\nread order-2 OrderPlaced\n" {
		t.Fatalf("the Node.js client with the printed %s: %v\n%s", kurrent, err, got)
	}
}

// nodeScenario returns a node command that runs in the directory of the
// server package's Node.js scenarios, where the published client is
// installed, or skips the test, saying why, when node or the client is
// missing (under CI=true it fails: .ci/run installs both).
func nodeScenario(t *testing.T) *exec.Cmd {
	t.Helper()
	dir := filepath.Join("..", "..", "server", "testdata", "node")
	node, err := exec.LookPath("node")
	if err == nil {
		_, err = os.Stat(filepath.Join(dir, "node_modules", "@kurrent", "kurrentdb-client", "package.json"))
	}
	if err != nil {
		msg := fmt.Sprintf("the Node.js client: %v: install Node.js 20 or later, then run \"npm ci\" in server/testdata/node", err)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Log("skipped: " + msg)
		return nil
	}
	cmd := exec.Command(node)
	cmd.Dir = dir
	return cmd
}
