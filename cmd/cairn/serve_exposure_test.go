package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

// TestServeRefusesPublicHTTP checks that cairn serve refuses to serve its
// HTTP port (/metrics, /health) beyond loopback unless --http-public says
// so, and refuses before it opens the store or listens.
func TestServeRefusesPublicHTTP(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:0", ":0"} {
		// A serve that starts runs until the context ends.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		cmd := newRootCmd()
		var out bytes.Buffer
		cmd.SetOut(&out)
		cmd.SetErr(&out)
		cmd.SetArgs([]string{"serve", "--store", "memory:", "--listen", "127.0.0.1:0", "--http-listen", addr})
		err := cmd.ExecuteContext(ctx)
		cancel()
		if err == nil || !strings.Contains(err.Error(), "--http-public") {
			t.Errorf("serve --http-listen %s: %v, want a refusal naming --http-public", addr, err)
		}
		if strings.Contains(out.String(), "cairn serving") {
			t.Errorf("serve --http-listen %s served:\n%s", addr, out.String())
		}
	}
}

// TestServeRefusesDefaultPasswordsBeyondLoopback checks that cairn serve,
// beyond loopback, refuses a store whose admin or ops has the default
// password, and serves once both are set on a new store.
func TestServeRefusesDefaultPasswordsBeyondLoopback(t *testing.T) {
	certs := devCerts(t)
	tlsArgs := []string{"--tls-cert", certs.NodeCert, "--tls-key", certs.NodeKey, "--http-listen", ""}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "the user admin has the default password"},
		{[]string{"--admin-password", "long-secret"}, "the user ops has the default password"},
	} {
		cmd := newRootCmd()
		var out bytes.Buffer
		cmd.SetOut(&out)
		cmd.SetErr(&out)
		cmd.SetArgs(append(append([]string{"serve", "--store", "memory:", "--listen", "0.0.0.0:0"}, tlsArgs...), tc.args...))
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := cmd.ExecuteContext(ctx)
		cancel()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("serve %v: %v, want a refusal saying %q", tc.args, err, tc.want)
		}
		if strings.Contains(out.String(), "cairn serving") {
			t.Errorf("serve %v served:\n%s", tc.args, out.String())
		}
	}
	// It serves until stopped, once it has started: however long hashing
	// the passwords takes on a busy machine.
	cmd := newRootCmd()
	out := &syncBuffer{}
	cmd.SetOut(out)
	cmd.SetErr(out)
	cmd.SetArgs(append([]string{"serve", "--store", "memory:", "--listen", "0.0.0.0:0", "--admin-password", "long-secret", "--ops-password", "other-secret"}, tlsArgs...))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- cmd.ExecuteContext(ctx) }()
	deadline := time.After(time.Minute)
	for !strings.Contains(out.String(), "cairn serving") {
		select {
		case err := <-done:
			t.Fatalf("serve with both passwords set ended: %v\n%s", err, out)
		case <-deadline:
			t.Fatalf("serve with both passwords set did not serve:\n%s", out)
		case <-time.After(10 * time.Millisecond):
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("serve with both passwords set: %v", err)
	}
}
