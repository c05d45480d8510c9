package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// natsServer is one nats-server process of a test's NATS cluster, on
// fixed addresses so that it restarts where it was, with its JetStream
// files in dir; in the network namespace netns when that is set.
type natsServer struct {
	name, dir, client, route string
	routes                   []string
	netns                    string
	monitor                  string // the monitoring port's address, if any
	cmd                      *exec.Cmd
	logs                     *syncBuffer
}

// start writes the server's configuration, as docs/cluster.md asks of a
// production NATS cluster (JetStream, sync_interval: always, routes to
// the others), and starts it.
func (s *natsServer) start(t *testing.T) {
	t.Helper()
	var routes []string
	for _, r := range s.routes {
		routes = append(routes, fmt.Sprintf("%q", "nats-route://"+r))
	}
	conf := fmt.Sprintf(`server_name: %q
listen: %q
jetstream { store_dir: %q, sync_interval: always }
cluster { name: cairn-test, listen: %q, routes: [%s] }
`, s.name, s.client, filepath.Join(s.dir, "jetstream"), s.route, strings.Join(routes, ", "))
	if s.monitor != "" {
		conf += fmt.Sprintf("http: %q\n", s.monitor)
	}
	path := filepath.Join(s.dir, "nats.conf")
	if err := os.MkdirAll(s.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	s.cmd = inNetns(s.netns, natsServerBinary(t), "-c", path)
	s.logs = &syncBuffer{}
	s.cmd.Stderr = s.logs
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
}

// waitUp waits until the server takes connections.
func (s *natsServer) waitUp(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		nc, err := nats.Connect("nats://"+s.client, nats.Timeout(time.Second), nats.NoReconnect())
		if err == nil {
			nc.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("NATS server %s did not start: %v\n%s", s.name, err, s.logs)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (s *natsServer) kill() {
	_ = s.cmd.Process.Signal(syscall.SIGKILL)
	_ = s.cmd.Wait()
}

// startNATSCluster starts three nats-server processes routed to each
// other.
func startNATSCluster(t *testing.T) []*natsServer {
	t.Helper()
	servers := make([]*natsServer, 3)
	for i := range servers {
		servers[i] = &natsServer{name: fmt.Sprint("nats-", i), dir: filepath.Join(t.TempDir(), fmt.Sprint("nats-", i)), client: freeAddr(t), route: freeAddr(t), monitor: freeAddr(t)}
	}
	startNATSServers(t, servers)
	return servers
}

// startNATSServers starts the servers routed to each other, kills them
// when the test ends (showing their logs when it failed), and waits until
// they take connections.
func startNATSServers(t *testing.T, servers []*natsServer) {
	t.Helper()
	for i, s := range servers {
		for j, o := range servers {
			if i != j {
				s.routes = append(s.routes, o.route)
			}
		}
		s.start(t)
	}
	t.Cleanup(func() {
		for _, s := range servers {
			s.kill()
			if t.Failed() {
				t.Logf("NATS server %s logged:\n%s", s.name, s.logs)
			}
		}
	})
	for _, s := range servers {
		s.waitUp(t)
	}
}

// inNetns is the command that runs name with args in the network
// namespace netns (`ip netns exec`, which execs in place: the process
// is the command's own), or where the test runs when netns is empty.
func inNetns(netns, name string, args ...string) *exec.Cmd {
	if netns == "" {
		return exec.Command(name, args...)
	}
	return exec.Command("ip", append([]string{"netns", "exec", netns, name}, args...)...)
}

var (
	natsBinOnce sync.Once
	natsBinPath string
	natsBinErr  error
)

// natsServerBinary builds the real nats-server, the version go.mod holds
// (cairn's embedded server is its package), once per test binary.
func natsServerBinary(t *testing.T) string {
	t.Helper()
	natsBinOnce.Do(func() {
		dir, err := os.MkdirTemp("", "cairn-nats-server-")
		if err != nil {
			natsBinErr = err
			return
		}
		natsBinPath = filepath.Join(dir, "nats-server")
		if out, err := exec.Command("go", "build", "-o", natsBinPath, "github.com/nats-io/nats-server/v2").CombinedOutput(); err != nil {
			natsBinErr = fmt.Errorf("go build nats-server: %v\n%s", err, out)
		}
	})
	if natsBinErr != nil {
		t.Fatal(natsBinErr)
	}
	return natsBinPath
}

// streamState returns the NATS server that leads the log's stream (CAIRN)
// and whether every replica is current, asking any server that answers.
func streamState(servers []*natsServer) (leader string, current bool, err error) {
	for _, s := range servers {
		var nc *nats.Conn
		nc, err = nats.Connect("nats://"+s.client, nats.Timeout(time.Second), nats.NoReconnect())
		if err != nil {
			continue
		}
		var info *jetstream.StreamInfo
		info, err = func() (*jetstream.StreamInfo, error) {
			defer nc.Close()
			js, err := jetstream.New(nc)
			if err != nil {
				return nil, err
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			st, err := js.Stream(ctx, "CAIRN")
			if err != nil {
				return nil, err
			}
			return st.Info(ctx)
		}()
		if err != nil || info.Cluster == nil {
			continue
		}
		current = info.Cluster.Leader != "" && len(info.Cluster.Replicas) == len(servers)-1
		for _, r := range info.Cluster.Replicas {
			current = current && r.Current && !r.Offline
		}
		return info.Cluster.Leader, current, nil
	}
	return "", false, fmt.Errorf("no NATS server told the stream's state: %v", err)
}

// waitStreamCurrent waits until the stream has a leader and every replica
// is current: a NATS server that was down has caught up.
func waitStreamCurrent(t *testing.T, servers []*natsServer) string {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		leader, current, err := streamState(servers)
		if current {
			return leader
		}
		if time.Now().After(deadline) {
			t.Fatalf("the stream's replicas are not current after a minute (leader %q): %v", leader, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// natsPlacement tells, from the monitoring ports of the servers that
// answer, which server leads the JetStream meta group and each stream,
// which hosts each consumer of the log (a node's applier reads through
// one), and where the cairn nodes' connections (NATS clients named
// "cairn …") are, by the address they come from.
func natsPlacement(servers []*natsServer) string {
	var b strings.Builder
	meta := ""
	leaders := map[string]string{}
	consumers := map[string][]string{}
	conns := map[string][]string{}
	for _, s := range servers {
		if s.monitor == "" {
			continue
		}
		var jsz struct {
			Meta *struct {
				Leader string `json:"leader"`
			} `json:"meta_cluster"`
			Accounts []struct {
				Streams []struct {
					Name    string `json:"name"`
					Cluster *struct {
						Leader string `json:"leader"`
					} `json:"cluster"`
					Consumers []struct {
						Name    string `json:"name"`
						Cluster *struct {
							Leader string `json:"leader"`
						} `json:"cluster"`
					} `json:"consumer_detail"`
				} `json:"stream_detail"`
			} `json:"account_details"`
		}
		if getJSON("http://"+s.monitor+"/jsz?accounts=true&streams=true&consumers=true", &jsz) != nil {
			continue
		}
		if jsz.Meta != nil && jsz.Meta.Leader != "" {
			meta = jsz.Meta.Leader
		}
		for _, a := range jsz.Accounts {
			for _, st := range a.Streams {
				if st.Cluster != nil && st.Cluster.Leader != "" {
					leaders[st.Name] = st.Cluster.Leader
				}
				for _, c := range st.Consumers {
					if c.Cluster != nil && c.Cluster.Leader == s.name {
						consumers[s.name] = append(consumers[s.name], st.Name+">"+c.Name)
					}
				}
			}
		}
		var connz struct {
			Conns []struct {
				IP   string `json:"ip"`
				Port int    `json:"port"`
				Name string `json:"name"`
			} `json:"connections"`
		}
		if getJSON("http://"+s.monitor+"/connz?limit=1000", &connz) != nil {
			continue
		}
		for _, c := range connz.Conns {
			if strings.HasPrefix(c.Name, "cairn ") {
				conns[s.name] = append(conns[s.name], fmt.Sprintf("%s:%d", c.IP, c.Port))
			}
		}
	}
	fmt.Fprintf(&b, "meta leader %s; stream leaders %v; consumers by server %v; cairn connections by server %v", meta, leaders, consumers, conns)
	return b.String()
}

// getJSON decodes what a GET of url answers into v.
func getJSON(url string, v any) error {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return json.NewDecoder(resp.Body).Decode(v)
}

// metaLeader returns the server that leads the JetStream meta group, as
// the first server that knows says, or "".
func metaLeader(servers []*natsServer) string {
	for _, s := range servers {
		var jsz struct {
			Meta *struct {
				Leader string `json:"leader"`
			} `json:"meta_cluster"`
		}
		if s.monitor != "" && getJSON("http://"+s.monitor+"/jsz", &jsz) == nil && jsz.Meta != nil && jsz.Meta.Leader != "" {
			return jsz.Meta.Leader
		}
	}
	return ""
}

// stepDownStream asks the log's stream leader to step down, so that
// another server leads it.
func stepDownStream(t *testing.T, servers []*natsServer) {
	t.Helper()
	nc, err := nats.Connect("nats://"+servers[0].client, nats.Timeout(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	resp, err := nc.Request("$JS.API.STREAM.LEADER.STEPDOWN.CAIRN", nil, 5*time.Second)
	if err != nil {
		t.Fatalf("the stream's leader did not step down: %v", err)
	}
	var r struct {
		Success bool `json:"success"`
		Error   *struct {
			Description string `json:"description"`
		} `json:"error"`
	}
	if err := json.Unmarshal(resp.Data, &r); err != nil || !r.Success {
		t.Fatalf("the stream's leader did not step down: %s", resp.Data)
	}
}
