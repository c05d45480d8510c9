package server_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/cairndb/cairn/server"
)

// The gRPC port serves the web UI under /ui/, and leads a browser there
// from /; the UI counts a failed login among the server's authentication
// failures. --disable-admin-ui (Options.DisableWebUI) turns it off.
func TestWebUIOnTheNodePort(t *testing.T) {
	ts := startPlaintext(t, server.Options{})
	n := nodeHTTP{t: t, c: &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}, base: "http://" + ts.addr}
	if resp, _ := n.do("GET", "/", "", nil, ""); resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/ui/" {
		t.Errorf("GET /: %d to %q, want 302 to /ui/", resp.StatusCode, resp.Header.Get("Location"))
	}
	if resp, _ := n.do("GET", "/ui/", "", nil, ""); resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/ui/login") {
		t.Errorf("GET /ui/ without credentials: %d to %q, want 303 to the login form", resp.StatusCode, resp.Header.Get("Location"))
	}
	if resp, body := n.do("GET", "/ui/", "admin:"+server.DefaultAdminPassword, nil, ""); resp.StatusCode != http.StatusOK || !strings.Contains(body, "Dashboard") {
		t.Errorf("GET /ui/ as admin: %d %s", resp.StatusCode, body)
	}
	if resp, _ := n.do("POST", "/ui/login", "", map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, "user=admin&password=wrong"); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("a wrong login: %d, want 401", resp.StatusCode)
	}
	// The KurrentDB API beside it is unchanged.
	if resp, _ := n.do("GET", "/stats", "", nil, ""); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("/stats without credentials: %d, want 401", resp.StatusCode)
	}
	hs := httptest.NewServer(ts.HTTPHandler())
	defer hs.Close()
	resp, err := http.Get(hs.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(metrics), "cairn_auth_failures_total 2") {
		t.Errorf("/metrics does not count the UI's failed login and /stats': %s", grepLines(string(metrics), "cairn_auth_failures_total"))
	}

	off := startPlaintext(t, server.Options{DisableWebUI: true})
	n.base = "http://" + off.addr
	if resp, _ := n.do("GET", "/ui/", "admin:"+server.DefaultAdminPassword, nil, ""); resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /ui/ with the UI off: %d, want 404", resp.StatusCode)
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
