package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// appendMany appends n events to a few streams of the store in dir.
func appendMany(t *testing.T, dir string, from, n int) {
	t.Helper()
	for i := from; i < from+n; i++ {
		mustCairn(t, "append", fmt.Sprint("order-", i%4), "OrderPlaced", fmt.Sprintf(`{"n":%d}`, i), "--store", dir)
	}
}

// lines returns the events `cairn read` prints of the store in dir.
func readCount(t *testing.T, dir string) int {
	t.Helper()
	out, _ := mustCairn(t, "read", "--store", dir, "--count", "100000")
	return len(decodeLines(t, out))
}

// Back up a store twice (the second copies only what changed), list the
// generations, restore the newest into a new directory, which passes the
// check and holds every event; a restore never overwrites.
func TestBackupRestoreCommands(t *testing.T) {
	base := t.TempDir()
	store, dest := filepath.Join(base, "store"), filepath.Join(base, "backups")
	appendMany(t, store, 0, 20)
	_, errOut := mustCairn(t, "backup", dest, "--store", store)
	if !strings.Contains(errOut, "holds generation 1") || !strings.Contains(errOut, "every event before position 20") {
		t.Fatalf("backup printed %q", errOut)
	}
	appendMany(t, store, 20, 10)
	_, errOut = mustCairn(t, "backup", dest, "--store", store, "--copy")
	if !strings.Contains(errOut, "holds generation 2") || !strings.Contains(errOut, "every event before position 30") {
		t.Fatalf("the second backup printed %q", errOut)
	}
	out, _ := mustCairn(t, "backup", "--list", dest)
	if rows := strings.Split(strings.TrimSpace(out), "\n"); len(rows) != 3 || !strings.HasPrefix(rows[1], "000001-") || !strings.HasPrefix(rows[2], "000002-") {
		t.Fatalf("backup --list printed %q", out)
	}

	restored := filepath.Join(base, "restored")
	out, errOut = mustCairn(t, "restore", dest, restored)
	if !strings.Contains(errOut, "holds generation 2") || !strings.Contains(out, restored+": sound") {
		t.Fatalf("restore printed %q and %q", out, errOut)
	}
	if n := readCount(t, restored); n != 30 {
		t.Fatalf("the restored store holds %d events, want 30", n)
	}
	if _, _, err := cairnCmd(t, "restore", dest, restored); err == nil || !strings.Contains(err.Error(), "is not empty") {
		t.Fatalf("restore over a store: %v", err)
	}
	// It is a store of its own: it takes appends, and its backups go to a
	// set of their own.
	mustCairn(t, "append", "order-9", "OrderPlaced", "{}", "--store", restored)
	if _, _, err := cairnCmd(t, "backup", dest, "--store", restored); err == nil || !strings.Contains(err.Error(), "holds backups of another store") {
		t.Fatalf("a backup of the restored store into the original's set: %v", err)
	}

	// What a backup refuses, before writing anything.
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"backup", filepath.Join(base, "b1"), "--store", filepath.Join(base, "none")}, "no store at"},
		{[]string{"backup", filepath.Join(store, "b"), "--store", store}, "is inside the store's directory"},
		{[]string{"backup", filepath.Join(base, "b2"), "--store", "memory:"}, "has nothing to back up"},
		{[]string{"backup", filepath.Join(base, "b3"), "--store", "postgres://u@h/db"}, "pg_dump"},
		{[]string{"backup", filepath.Join(base, "b4"), "--store", store, "--keep", "-1"}, "--keep -1"},
		{[]string{"restore", filepath.Join(base, "none"), filepath.Join(base, "r")}, "no such file"},
		{[]string{"restore", store, filepath.Join(base, "r")}, "holds files that are not backups"},
	} {
		_, _, err := cairnCmd(t, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("cairn %s: %v, want an error containing %q", strings.Join(tc.args, " "), err, tc.want)
		}
	}
	for _, name := range []string{"b1", "b2", "b3", "b4", "r", "none"} {
		if _, err := os.Stat(filepath.Join(base, name)); err == nil {
			t.Errorf("a refused command created %s", name)
		}
	}
}

// cairn check names damage in the log (where, which stream), exits with a
// failure, and says a rebuild does not repair it; damage to the index it
// names as repairable, and check --repair repairs it.
func TestCheckCommand(t *testing.T) {
	base := t.TempDir()
	store := filepath.Join(base, "store")
	appendMany(t, store, 0, 12)
	out, _ := mustCairn(t, "check", store)
	if !strings.Contains(out, store+": sound: 1 segments") || !strings.Contains(out, "12 events, 4 streams") || !strings.Contains(out, "equal to the index the log rebuilds") {
		t.Fatalf("check of a sound store printed %q", out)
	}
	// --store names the store too.
	if out, _ := mustCairn(t, "check", "--store", store); !strings.Contains(out, "sound") {
		t.Fatalf("check --store printed %q", out)
	}
	if _, _, err := cairnCmd(t, "check", "--server", "cairn://127.0.0.1:1"); err == nil || !strings.Contains(err.Error(), "back it up") {
		t.Fatalf("check --server: %v", err)
	}

	// The index: its MANIFEST damaged.
	damaged := filepath.Join(base, "damaged-index")
	mustCairn(t, "restore", mustBackup(t, store, base), damaged, "--copy", "--no-check")
	manifests, _ := filepath.Glob(filepath.Join(damaged, "MANIFEST-*"))
	if len(manifests) == 0 {
		t.Fatal("the restored store has no MANIFEST")
	}
	for _, m := range manifests {
		flipByte(t, m, 10)
	}
	out, _, err := cairnCmd(t, "check", damaged)
	if err == nil || !strings.Contains(err.Error(), "problems found") || !strings.Contains(out, "index: the index cannot be opened") || !strings.Contains(out, "[rebuilding the index repairs this]") {
		t.Fatalf("check of a damaged index: %v\n%s", err, out)
	}
	out, _ = mustCairn(t, "check", "--repair", damaged)
	if !strings.Contains(out, "repaired: the index of "+damaged+" was rebuilt from its log") {
		t.Fatalf("check --repair printed %q", out)
	}
	if out, _ := mustCairn(t, "check", damaged); !strings.Contains(out, "sound") {
		t.Fatalf("check after the repair printed %q", out)
	}
	if n := readCount(t, damaged); n != 12 {
		t.Fatalf("the repaired store holds %d events, want 12", n)
	}

	// The log: a byte of an event flipped.
	broken := filepath.Join(base, "damaged-log")
	mustCairn(t, "restore", mustBackup(t, store, base), broken, "--copy", "--no-check")
	seg := filepath.Join(broken, "log", "0000000000000001.log")
	b, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	at := strings.Index(string(b), `{"n":5}`)
	flipByte(t, seg, at+5)
	out, _, err = cairnCmd(t, "check", broken)
	if err == nil || !strings.Contains(err.Error(), "restore the store from a backup") {
		t.Fatalf("check of a damaged log: %v\n%s", err, out)
	}
	for _, want := range []string{"log/" + "0000000000000001.log" + " offset", `stream "order-1" version 1 position 5: the event is damaged`, "[rebuilding the index does not repair this]"} {
		if !strings.Contains(out, want) {
			t.Errorf("check of a damaged log printed no %q:\n%s", want, out)
		}
	}
	before, _ := os.ReadFile(seg)
	if _, _, err := cairnCmd(t, "check", "--repair", broken); err == nil || !strings.Contains(err.Error(), "does not repair") {
		t.Fatalf("check --repair of a damaged log: %v", err)
	}
	if after, _ := os.ReadFile(seg); string(after) != string(before) {
		t.Fatal("check --repair of a damaged log changed it")
	}
}

var backups int

// mustBackup backs the store up into a new set under base.
func mustBackup(t *testing.T, store, base string) string {
	t.Helper()
	backups++
	dest := filepath.Join(base, fmt.Sprint("set", backups))
	mustCairn(t, "backup", dest, "--store", store, "--copy")
	return dest
}

func flipByte(t *testing.T, path string, off int) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[off] ^= 0xff
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// cairn backup --server backs up a running server's store, which a
// --store backup cannot reach while the server holds it; the backup
// restores to a store that serves.
func TestBackupThroughAServer(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the cairn binary")
	}
	bin := cairnBinary(t)
	base := t.TempDir()
	dir := filepath.Join(base, "cairn-data")
	certs := devCerts(t)
	_, addr := startServe(t, bin, dir, certs)
	ids := appendThroughClient(t, addr, certs, 25)
	dest := filepath.Join(base, "backups")
	if _, _, err := cairnCmd(t, "backup", dest, "--store", dir); err == nil || !strings.Contains(err.Error(), "--server cairn://") {
		t.Fatalf("a backup of a directory a server holds: %v", err)
	}
	url := "cairn://ops:changeit@" + addr + "?tls=true&tlsCAFile=" + certs.CACert
	_, errOut := mustCairn(t, "backup", dest, "--server", url)
	if !strings.Contains(errOut, "holds generation 1") {
		t.Fatalf("backup --server printed %q", errOut)
	}
	appendThroughClient(t, addr, certs, 5)
	_, errOut = mustCairn(t, "backup", dest, "--server", url, "--keep", "1")
	if !strings.Contains(errOut, "holds generation 2") || !strings.Contains(errOut, "removed the old generation") {
		t.Fatalf("the second backup --server printed %q", errOut)
	}
	if out, _ := mustCairn(t, "check", dest); !strings.Contains(out, "sound") {
		t.Fatalf("check of the backup set printed %q", out)
	}
	restored := filepath.Join(base, "restored")
	mustCairn(t, "restore", dest, restored)
	out, _ := mustCairn(t, "read", "orders", "--store", restored)
	got := decodeLines(t, out)
	if len(got) != 30 || got[0].ID != ids[0].String() {
		t.Fatalf("the restored store holds %d events of orders, want 30", len(got))
	}
	startServe(t, bin, restored, certs)
}
