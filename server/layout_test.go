package server_test

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// The server is the top of the stack: only the command imports it. The
// protocols it serves (kurrentdbsvc, cairnsvc), package auth and every
// layer below take what they need of it in types of their own.
func TestOnlyTheCommandImportsTheServer(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to list imports with")
	}
	const host = "github.com/cairndb/cairn/server"
	out, err := exec.Command(goTool, "list", "-f", "{{.ImportPath}} {{join .Deps \" \"}}", "github.com/cairndb/cairn/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for line := range strings.Lines(string(out)) {
		fields := strings.Fields(line)
		pkg, deps := fields[0], fields[1:]
		if pkg == "github.com/cairndb/cairn/cmd/cairn" {
			continue
		}
		if slices.Contains(deps, host) {
			t.Errorf("%s imports %s", pkg, host)
		}
	}
}
