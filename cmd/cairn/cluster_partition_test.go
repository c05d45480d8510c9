package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cairndb/cairn/server"
	"github.com/google/uuid"
	"github.com/kurrent-io/KurrentDB-Client-Go/kurrentdb"
)

// netLabPrefix begins the name of every network namespace a netLab makes,
// followed by the test process's id: a namespace left by a run that was
// killed (its process gone) is removed by the next run.
const netLabPrefix = "cairnpart-"

// netLab is a small network of its own for a test: machines, each a
// network namespace (<prefix><pid>-m<i>) with one address in a /24 the
// host has no route into, joined by veth pairs to a bridge in a
// namespace of the lab's own (<prefix><pid>-net), which the test process
// reaches through one more veth pair (cairnp<pid> on the host). Traffic
// stays on the lab's addresses: nothing on the host's own networks
// changes but that one link and its route.
type netLab struct {
	t        *testing.T
	name     string // <prefix><pid>
	subnet   string // 10.213.X
	machines int
}

// ns is machine i's namespace.
func (l *netLab) ns(i int) string { return fmt.Sprintf("%s-m%d", l.name, i) }

// addr is machine i's address.
func (l *netLab) addr(i int) string { return fmt.Sprintf("%s.%d", l.subnet, 11+i) }

// newNetLab makes a lab of machines, and removes it when the test ends.
// Without the means (root, `ip`, network namespaces) the test is skipped,
// except under CI=true, where it fails.
func newNetLab(t *testing.T, machines int) *netLab {
	t.Helper()
	cannot := func(format string, args ...any) {
		t.Helper()
		msg := fmt.Sprintf(format, args...)
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s (CI=true: this test must run)", msg)
		}
		t.Skipf("%s: this test needs root and `ip` to make network namespaces", msg)
	}
	if os.Geteuid() != 0 {
		cannot("not root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		cannot("no `ip` command: %v", err)
	}
	removeLeftoverLabs(t)
	l := &netLab{t: t, name: fmt.Sprint(netLabPrefix, os.Getpid()), machines: machines}
	var err error
	if l.subnet, err = freeSubnet(); err != nil {
		cannot("%v", err)
	}
	if out, err := exec.Command("ip", "netns", "add", l.name+"-net").CombinedOutput(); err != nil {
		cannot("ip netns add: %v: %s", err, bytes.TrimSpace(out))
	}
	t.Cleanup(l.remove)
	host := fmt.Sprint("cairnp", os.Getpid())
	l.ip("-n", l.name+"-net", "link", "add", "br0", "type", "bridge")
	l.ip("-n", l.name+"-net", "link", "set", "br0", "up")
	for i := range machines {
		l.ip("netns", "add", l.ns(i))
		l.ip("link", "add", fmt.Sprint("m", i), "netns", l.name+"-net", "type", "veth", "peer", "name", "eth0", "netns", l.ns(i))
		l.ip("-n", l.name+"-net", "link", "set", fmt.Sprint("m", i), "master", "br0", "up")
		l.ip("-n", l.ns(i), "addr", "add", l.addr(i)+"/24", "dev", "eth0")
		l.ip("-n", l.ns(i), "link", "set", "eth0", "up")
		l.ip("-n", l.ns(i), "link", "set", "lo", "up")
	}
	l.ip("link", "add", host, "type", "veth", "peer", "name", "host", "netns", l.name+"-net")
	l.ip("-n", l.name+"-net", "link", "set", "host", "master", "br0", "up")
	l.ip("addr", "add", l.subnet+".1/24", "dev", host)
	l.ip("link", "set", host, "up")
	return l
}

// ip runs `ip args…`, failing the test if it fails.
func (l *netLab) ip(args ...string) {
	l.t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		l.t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
}

// isolate cuts machine i off from the other machines, both ways: every
// packet between them is dropped (blackhole routes on each side), while
// the test process still reaches every machine.
func (l *netLab) isolate(i int) { l.routes("add", i) }

// heal joins machine i to the others again.
func (l *netLab) heal(i int) { l.routes("del", i) }

func (l *netLab) routes(verb string, i int) {
	l.t.Helper()
	for j := range l.machines {
		if j != i {
			l.ip("-n", l.ns(i), "route", verb, "blackhole", l.addr(j)+"/32")
			l.ip("-n", l.ns(j), "route", verb, "blackhole", l.addr(i)+"/32")
		}
	}
}

// remove kills what still runs in the lab's namespaces and deletes them;
// the veth pairs go with them.
func (l *netLab) remove() {
	for i := range l.machines {
		removeNetns(l.t, l.ns(i))
	}
	removeNetns(l.t, l.name+"-net")
}

// removeNetns kills the processes in the namespace and deletes it.
func removeNetns(t *testing.T, ns string) {
	out, err := exec.Command("ip", "netns", "pids", ns).Output()
	if err != nil {
		return // not there
	}
	for _, f := range strings.Fields(string(out)) {
		if pid, err := strconv.Atoi(f); err == nil {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	if out, err := exec.Command("ip", "netns", "del", ns).CombinedOutput(); err != nil {
		t.Errorf("ip netns del %s: %v: %s", ns, err, bytes.TrimSpace(out))
	}
}

// removeLeftoverLabs removes the namespaces of labs whose test process is
// gone (a run killed before its cleanup).
func removeLeftoverLabs(t *testing.T) {
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		return
	}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || !strings.HasPrefix(f[0], netLabPrefix) {
			continue
		}
		pidText, _, _ := strings.Cut(strings.TrimPrefix(f[0], netLabPrefix), "-")
		pid, err := strconv.Atoi(pidText)
		if err != nil || pid == os.Getpid() || !errors.Is(syscall.Kill(pid, 0), syscall.ESRCH) {
			continue
		}
		t.Logf("removing network namespace %s, left by test process %d", f[0], pid)
		removeNetns(t, f[0])
	}
}

// freeSubnet picks a 10.213.X.0/24 that no route or address of the host's
// overlaps (another lab's included), starting from one the process id
// chooses.
func freeSubnet() (string, error) {
	var taken []*net.IPNet
	for _, args := range [][]string{{"-4", "-o", "route", "show", "table", "all"}, {"-4", "-o", "addr", "show"}} {
		out, err := exec.Command("ip", args...).Output()
		if err != nil {
			return "", fmt.Errorf("ip %s: %v", strings.Join(args, " "), err)
		}
		for _, f := range strings.Fields(string(out)) {
			if f == "default" {
				continue
			}
			if !strings.Contains(f, "/") {
				f += "/32"
			}
			if _, n, err := net.ParseCIDR(f); err == nil {
				taken = append(taken, n)
			}
		}
	}
	start := os.Getpid() % 250
	for k := range 250 {
		x := 1 + (start+k)%250
		_, n, _ := net.ParseCIDR(fmt.Sprintf("10.213.%d.0/24", x))
		free := true
		for _, o := range taken {
			if o.Contains(n.IP) || n.Contains(o.IP) {
				free = false
			}
		}
		if free {
			return fmt.Sprintf("10.213.%d", x), nil
		}
	}
	return "", errors.New("every 10.213.X.0/24 overlaps a route or address of the host")
}

// A network partition: three machines, each a network namespace with one
// nats-server and one `cairn serve --store nats://…` node (TLS), under the
// writers of TestClusterFaults (the official KurrentDB client, reaching
// every node from outside the machines). In each round one machine is cut
// off from the other two — first the one whose NATS server leads the
// log's stream, then another — for longer than the client's deadline and
// the NATS election, then joined again. While it is cut off, writes
// through the other two go on, and no append made through its node is
// acknowledged (they fail or time out; a writer retries through another
// node); after it, its node catches up. After each round everything
// TestClusterFaults checks holds: the history linearizable (an append
// whose outcome was never learned may or may not have landed), every
// acknowledged append once at its version, every node's log the same and
// gapless. -fault-rounds runs more rounds.
func TestClusterPartition(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three nats-server and three cairn processes in network namespaces")
	}
	lab := newNetLab(t, 3)
	var hosts []string
	for i := range 3 {
		hosts = append(hosts, lab.addr(i))
	}
	certs, err := server.GenerateCerts(t.TempDir(), server.CertOptions{Hosts: hosts})
	if err != nil {
		t.Fatal(err)
	}
	natsServers := make([]*natsServer, 3)
	var urls []string
	for i := range natsServers {
		natsServers[i] = &natsServer{name: fmt.Sprint("nats-", i), dir: filepath.Join(t.TempDir(), fmt.Sprint("nats-", i)),
			client: lab.addr(i) + ":4222", route: lab.addr(i) + ":6222", monitor: lab.addr(i) + ":8222", netns: lab.ns(i)}
		urls = append(urls, natsServers[i].client)
	}
	startNATSServers(t, natsServers)
	nodes := make([]*clusterNode, 3)
	for i := range nodes {
		nodes[i] = &clusterNode{dir: filepath.Join(t.TempDir(), fmt.Sprint("n", i)), grpc: lab.addr(i) + ":2113", http: lab.addr(i) + ":2114",
			store: "nats://" + strings.Join(urls, ","), certs: &certs, netns: lab.ns(i), password: "partition-test"}
	}
	startNodes(t, nodes)
	waitStreamCurrent(t, natsServers)
	clients := newNodeClients(t, nodes)

	// hold is how long a machine stays cut off at least: longer than the
	// client's deadline and than a NATS election (a follower campaigns
	// after 4 to 9 s without its leader's heartbeat).
	hold := max(2*clientDeadline+time.Second, 10*time.Second)
	var isolated int
	var from, to time.Time
	var load *faultLoad
	partition := func(leaderMachine bool) fault {
		return fault{
			do: func(t *testing.T, round int, l *faultLoad) string {
				load = l
				leader := waitStreamCurrent(t, natsServers)
				leading := 0
				for i, s := range natsServers {
					if s.name == leader {
						leading = i
					}
				}
				isolated = leading
				led := "the stream's leader"
				if !leaderMachine {
					// A machine whose NATS server holds the connection
					// of a cairn node on another machine, where there
					// is one: that node must find another server.
					isolated = (leading + 1 + round%2) % 3
					for _, i := range []int{(leading + 1) % 3, (leading + 2) % 3} {
						for _, ip := range natsClientsOf(t, natsServers[i]) {
							if ip != lab.addr(i) {
								isolated = i
							}
						}
					}
					led = "not the stream's leader: " + leader
				}
				var conns []string
				for _, s := range natsServers {
					conns = append(conns, fmt.Sprintf("%s: %v", s.name, natsClientsOf(t, s)))
				}
				lab.isolate(isolated)
				from = time.Now()
				return fmt.Sprintf("machine %d (NATS server %s, %s; cairn node %d; cairn nodes' NATS connections from %v) cut off from the others",
					isolated, natsServers[isolated].name, led, isolated, strings.Join(conns, ", "))
			},
			heal: func(t *testing.T) {
				// The majority side has a leader for the stream: the
				// isolated server's, when it led, gone to another.
				var rest []*natsServer
				for i, s := range natsServers {
					if i != isolated {
						rest = append(rest, s)
					}
				}
				deadline := time.Now().Add(time.Minute)
				for {
					leader, _, _ := streamState(rest)
					if leader != "" && leader != natsServers[isolated].name {
						break
					}
					if time.Now().After(deadline) {
						t.Fatalf("no NATS server of the majority side leads the stream a minute into the partition (leader %q)", leader)
					}
					time.Sleep(200 * time.Millisecond)
				}
				// Writes through every node of the majority side go on:
				// a node whose NATS connection went to the cut-off
				// server finds another.
				for k := range nodes {
					for k != isolated && load.answeredBy(k, false, from, time.Now()) == 0 {
						if time.Now().After(deadline) {
							t.Fatalf("node %d, on the majority side, acknowledged no append made in the minute since machine %d was cut off", k, isolated)
						}
						time.Sleep(100 * time.Millisecond)
					}
				}
				if leaderMachine {
					probeStaleRead(t, clients, isolated, from.Add(hold))
				}
				time.Sleep(time.Until(from.Add(hold)))
				to = time.Now()
				lab.heal(isolated)
				waitStreamCurrent(t, natsServers)
				nodes[isolated].waitHealthy(t)
			},
			check: func(t *testing.T, round int, load *faultLoad) {
				t.Logf("round %d: cut off for %v; through the cut-off node %d, %d appends acknowledged and %d reads answered during it; through the others, %d appends acknowledged",
					round, to.Sub(from).Round(time.Millisecond), isolated, load.answeredBy(isolated, false, from, to), load.answeredBy(isolated, true, from, to),
					load.answeredBy((isolated+1)%3, false, from, to)+load.answeredBy((isolated+2)%3, false, from, to))
				if n := load.answeredBy(isolated, false, from, to); n > 0 {
					t.Errorf("round %d: %d appends made through node %d while its machine was cut off from the NATS majority were acknowledged", round, n, isolated)
				}
			},
		}
	}
	runFaultRounds(t, nodes, clients, []fault{partition(true), partition(false)}, *faultRounds)
}

// natsClientsOf returns the addresses that cairn nodes (NATS clients
// named "cairn …") connect to the server from, asking its monitoring port.
func natsClientsOf(t *testing.T, s *natsServer) []string {
	t.Helper()
	resp, err := http.Get("http://" + s.monitor + "/connz?limit=1000")
	if err != nil {
		t.Fatalf("NATS server %s's connections: %v", s.name, err)
	}
	defer resp.Body.Close()
	var connz struct {
		Conns []struct {
			IP   string `json:"ip"`
			Name string `json:"name"`
		} `json:"connections"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&connz); err != nil {
		t.Fatalf("NATS server %s's connections: %v", s.name, err)
	}
	var ips []string
	for _, c := range connz.Conns {
		if strings.HasPrefix(c.Name, "cairn ") {
			ips = append(ips, c.IP)
		}
	}
	return ips
}

// probeStaleRead appends to a stream of its own through a node of the
// majority side, then, until the partition ends, reads the stream's last
// version through the cut-off node with requires-leader, which must not
// answer without the append.
func probeStaleRead(t *testing.T, clients *nodeClients, isolated int, until time.Time) {
	t.Helper()
	stream := "probe-" + uuid.NewString()
	var v int64 = -1
	for i := 0; v < 0 && time.Now().Before(until); i++ {
		ev := kurrentdb.EventData{EventID: uuid.Must(uuid.NewV7()), EventType: "P", ContentType: kurrentdb.ContentTypeJson, Data: []byte(`{}`)}
		res, err := clients.get((isolated+1+i%2)%3).AppendToStream(context.Background(), stream, kurrentdb.AppendToStreamOptions{}, ev)
		if err == nil {
			v = int64(res.NextExpectedVersion)
		}
	}
	stale := 0
	for v >= 0 && time.Now().Before(until) {
		got, ok := readVersion(clients, isolated, stream)
		if ok && got < v {
			stale++
		}
	}
	if stale > 0 {
		t.Errorf("%d requires-leader reads through the cut-off node %d missed an append acknowledged through the majority side before they were made", stale, isolated)
	}
}
