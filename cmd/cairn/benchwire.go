package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/bench"
	"github.com/cairndb/cairn/server"
	"github.com/kurrent-io/KurrentDB-Client-Go/kurrentdb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
)

// The wire workloads of cairn bench (K1–K5): the official KurrentDB client
// against a server, either the one --server names or a `cairn serve` that
// bench starts itself on a new store of --store's engine.

// servedOptions configure the server bench starts.
type servedOptions struct {
	binary     string // the cairn binary to run; empty: this one
	insecure   bool   // plaintext instead of TLS
	cpuprofile string // the server's CPU profile, when set
	floor      bool   // --grpc-floor: also start the gRPC floor
}

// served is a `cairn serve` that bench started.
type served struct {
	cmd  *exec.Cmd
	dir  string // certificates, removed at stop
	url  string // cairn://admin:…@host:port[?tls=true&tlsCAFile=…]
	http string // the address of its /metrics, or "" when not known
	logs *tail
	wait chan error
}

// servingAddrs are the addresses a server logs when it starts serving.
type servingAddrs struct{ grpc, http string }

// startServed runs `cairn serve` on store, on a free loopback port, over
// TLS with a development CA made for the run (plaintext with insecure),
// with a random admin password, and waits until it serves. With no store
// it runs the gRPC floor instead (`cairn bench floor`), likewise.
func startServed(ctx context.Context, store string, opts servedOptions) (*served, error) {
	binary := opts.binary
	if binary == "" {
		self, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("bench: the server to start: %w", err)
		}
		binary = self
	}
	dir, err := os.MkdirTemp("", "cairn-bench-serve-")
	if err != nil {
		return nil, err
	}
	args := []string{"serve", "--store", store, "--listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0", "--log-json"}
	if store == "" {
		// The gRPC floor (bench_floor.go), not a server of a store.
		args = []string{"bench", "floor", "--listen", "127.0.0.1:0"}
	}
	query := ""
	if opts.insecure {
		args = append(args, "--insecure")
	} else {
		files, err := server.GenerateCerts(dir, server.CertOptions{})
		if err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		args = append(args, "--tls-cert", files.NodeCert, "--tls-key", files.NodeKey)
		query = "?tls=true&tlsCAFile=" + url.QueryEscape(files.CACert)
	}
	if opts.cpuprofile != "" {
		args = append(args, "--cpuprofile", opts.cpuprofile)
	}
	password := randomPassword()
	cmd := exec.Command(binary, args...)
	cmd.Env = append(os.Environ(), envAdminPassword+"="+password, envOpsPassword+"="+randomPassword())
	stderr, err := cmd.StderrPipe()
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("bench: starting %s serve: %w", binary, err)
	}
	s := &served{cmd: cmd, dir: dir, logs: &tail{}, wait: make(chan error, 1)}
	addr := make(chan servingAddrs, 1)
	go s.read(stderr, addr)
	go func() { s.wait <- cmd.Wait() }()
	select {
	case a := <-addr:
		s.url = "cairn://" + url.UserPassword("admin", password).String() + "@" + a.grpc + query
		// A build that logs the address it was given rather than the
		// one bound says port 0: its metrics are then not reached.
		if a.http != "" && !strings.HasSuffix(a.http, ":0") {
			s.http = a.http
		}
		return s, nil
	case err := <-s.wait:
		os.RemoveAll(dir)
		return nil, fmt.Errorf("bench: %s serve exited before serving (%v):\n%s", binary, err, s.logs)
	case <-time.After(2 * time.Minute):
	case <-ctx.Done():
	}
	cmd.Process.Kill()
	<-s.wait
	os.RemoveAll(dir)
	return nil, fmt.Errorf("bench: %s serve did not start serving:\n%s", binary, s.logs)
}

// read reads the server's JSON log lines, sends the addresses of its
// "cairn serving" line to addr, and keeps the last lines for errors.
func (s *served) read(r io.Reader, addr chan<- servingAddrs) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		s.logs.add(line)
		var entry struct {
			Msg  string `json:"msg"`
			GRPC string `json:"grpc"`
			HTTP string `json:"http"`
		}
		if json.Unmarshal([]byte(line), &entry) == nil && (entry.Msg == "cairn serving" || entry.Msg == floorServing) && entry.GRPC != "" {
			select {
			case addr <- servingAddrs{grpc: entry.GRPC, http: entry.HTTP}:
			default:
			}
		}
	}
}

// commitMetrics are the metrics of the server's commit counts, in the
// order of their fields in cairn.CommitStats.
var commitMetrics = []string{"cairn_commit_writes_total", "cairn_commit_groups_total", "cairn_commit_syncs_total", "cairn_commit_sync_seconds_total"}

// scrapeCommitStats reads the commit counts of a server's engine from its
// metrics at url, or fails with cairn.ErrNotSupported when the engine does
// not count them.
func scrapeCommitStats(ctx context.Context, url string) (cairn.CommitStats, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return cairn.CommitStats{}, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return cairn.CommitStats{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return cairn.CommitStats{}, fmt.Errorf("%s: %s", url, resp.Status)
	}
	var v [4]float64
	found := 0
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		if i := slices.Index(commitMetrics, name); i >= 0 {
			if v[i], err = strconv.ParseFloat(strings.TrimSpace(value), 64); err != nil {
				return cairn.CommitStats{}, fmt.Errorf("%s: %s: %w", url, name, err)
			}
			found++
		}
	}
	if err := sc.Err(); err != nil {
		return cairn.CommitStats{}, err
	}
	if found < len(commitMetrics) {
		return cairn.CommitStats{}, fmt.Errorf("%s: %w: no commit counts", url, cairn.ErrNotSupported)
	}
	return cairn.CommitStats{Writes: uint64(v[0]), Groups: uint64(v[1]), Syncs: uint64(v[2]), SyncTime: time.Duration(v[3] * float64(time.Second))}, nil
}

// stop shuts the server down as SIGTERM does (in-flight requests finish,
// the store is closed) and removes its certificates.
func (s *served) stop() error {
	defer os.RemoveAll(s.dir)
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	select {
	case err := <-s.wait:
		if err != nil {
			return fmt.Errorf("bench: the server it started: %w:\n%s", err, s.logs)
		}
		return nil
	case <-time.After(time.Minute):
		s.cmd.Process.Kill()
		<-s.wait
		return errors.New("bench: the server it started did not stop within a minute of SIGTERM, and was killed")
	}
}

// tail keeps the last lines a server logged.
type tail struct {
	mu    sync.Mutex // guards lines; a leaf
	lines []string
}

func (t *tail) add(line string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.lines = append(t.lines, line)
	if len(t.lines) > 20 {
		t.lines = t.lines[len(t.lines)-20:]
	}
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.Join(t.lines, "\n")
}

func randomPassword() string { return rand.Text() }

// wireFor returns the wire workloads' view of the server that raw
// (cairn://[user:password@]host:port[?tls=true&tlsCAFile=…&tlsVerifyCert=false])
// names: official clients and gRPC connections that authenticate as its
// user.
func wireFor(raw string) (*bench.Wire, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("--server: %w", err)
	}
	user, password := "", ""
	if u.User != nil {
		user = u.User.Username()
		password, _ = u.User.Password()
	}
	q := url.Values{}
	for k, v := range u.Query() {
		q[strings.ToLower(k)] = v
	}
	secure, _ := strconv.ParseBool(q.Get("tls"))
	var cfg *tls.Config
	conn := url.URL{Scheme: "kurrentdb", User: u.User, Host: u.Host}
	cq := url.Values{"tls": {strconv.FormatBool(secure)}}
	if secure {
		cfg = &tls.Config{MinVersion: tls.VersionTLS12}
		if file := q.Get("tlscafile"); file != "" {
			pem, err := os.ReadFile(file)
			if err != nil {
				return nil, fmt.Errorf("--server: tlsCAFile: %w", err)
			}
			cfg.RootCAs = x509.NewCertPool()
			if !cfg.RootCAs.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("--server: tlsCAFile %s holds no PEM certificate", file)
			}
			abs, err := filepath.Abs(file)
			if err != nil {
				return nil, err
			}
			cq.Set("tlsCAFile", abs)
		}
		if q.Get("tlsverifycert") == "false" {
			cfg.InsecureSkipVerify = true
			cq.Set("tlsVerifyCert", "false")
		}
	}
	conn.RawQuery = cq.Encode()
	connString := conn.String()
	w := &bench.Wire{
		Name:      u.Host + map[bool]string{true: " (TLS)", false: " (plaintext)"}[secure],
		Generated: !secure,
		Client: func(ctx context.Context) (*kurrentdb.Client, error) {
			c, err := kurrentdb.ParseConnectionString(connString)
			if err != nil {
				return nil, err
			}
			c.Logger = kurrentdb.NoopLogging()
			return kurrentdb.NewClient(c)
		},
		Conn: func(ctx context.Context) (*grpc.ClientConn, error) {
			creds := insecure.NewCredentials()
			if cfg != nil {
				creds = credentials.NewTLS(cfg)
			}
			opts := []grpc.DialOption{grpc.WithTransportCredentials(creds)}
			if user != "" {
				opts = append(opts, grpc.WithPerRPCCredentials(basicAuth{
					header: "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+password)),
					secure: secure,
				}))
			}
			return grpc.NewClient(u.Host, opts...)
		},
	}
	if !secure {
		w.Name += ", appends through the generated client"
	}
	return w, nil
}

// basicAuth sends basic credentials with every call.
type basicAuth struct {
	header string
	secure bool
}

func (a basicAuth) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": a.header}, nil
}

func (a basicAuth) RequireTransportSecurity() bool { return a.secure }

// processCPU returns the CPU time (user and system) that process pid has
// used, from /proc, or -1 when it cannot be read there.
func processCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return -1
	}
	// The command name, in parentheses, may hold spaces: the fields
	// counted from 1 start after its closing parenthesis, at field 3.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return -1
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return -1
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64) // field 14
	stime, err2 := strconv.ParseInt(f[12], 10, 64) // field 15
	if err1 != nil || err2 != nil {
		return -1
	}
	// In clock ticks of USER_HZ, 100 a second on Linux.
	return time.Duration(utime+stime) * (time.Second / 100)
}
