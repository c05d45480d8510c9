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
