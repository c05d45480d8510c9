package server_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/cairndb/cairn/server"
)

// With Pprof the HTTP port serves Go's profiles to loopback clients, and
// refuses everyone else; without it, it serves none.
func TestPprofOnLoopbackOnly(t *testing.T) {
	get := func(h http.Handler, remote string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodGet, "/debug/pprof/cmdline", nil)
		req.RemoteAddr = remote
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	on := start(t, server.Options{Pprof: true}).HTTPHandler()
	for _, remote := range []string{"127.0.0.1:50000", "[::1]:50000"} {
		if rec := get(on, remote); rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "server.test") {
			t.Errorf("from %s: %d %q, want 200 and the command line", remote, rec.Code, rec.Body)
		}
	}
	for _, remote := range []string{"192.0.2.7:50000", "[2001:db8::1]:50000", "garbage"} {
		if rec := get(on, remote); rec.Code != http.StatusForbidden {
			t.Errorf("from %s: %d, want 403", remote, rec.Code)
		}
	}
	off := start(t, server.Options{}).HTTPHandler()
	if rec := get(off, "127.0.0.1:50000"); rec.Code != http.StatusNotFound {
		t.Errorf("without Pprof: %d, want 404", rec.Code)
	}
}

func TestCheckPprof(t *testing.T) {
	if err := server.CheckPprof("127.0.0.1:2114"); err != nil {
		t.Errorf("loopback: %v", err)
	}
	for _, addr := range []string{"", "0.0.0.0:2114", "192.0.2.7:2114"} {
		if err := server.CheckPprof(addr); err == nil || !strings.Contains(err.Error(), "loopback") {
			t.Errorf("CheckPprof(%q) = %v, want a refusal naming loopback", addr, err)
		}
	}
}
