package acl_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/memstore"
	"github.com/cairndb/cairn/server/acl"
	"github.com/cairndb/cairn/server/auth"
)

func TestParseACL(t *testing.T) {
	a, err := acl.FromMetadata([]byte(`{"$acl": {"$r": "$all", "$w": ["ada", "ops"], "$d": [], "$mr": null, "other": 5}}`))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(a.Read, []string{"$all"}) || !slices.Equal(a.Write, []string{"ada", "ops"}) ||
		a.Delete == nil || len(a.Delete) != 0 || a.MetadataRead != nil || a.MetadataWrite != nil {
		t.Errorf("parsed %+v", a)
	}
	// Written back as KurrentDB writes it: one role as a string.
	b, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != `{"$d":[],"$r":"$all","$w":["ada","ops"]}` {
		t.Errorf("marshalled %s", b)
	}
	for _, meta := range []string{``, `{}`, `{"$maxCount": 3}`, `{"$acl": null}`} {
		if a, err := acl.FromMetadata([]byte(meta)); err != nil || a.Read != nil {
			t.Errorf("FromMetadata(%q) = %+v, %v; want no ACL", meta, a, err)
		}
	}
	// The clients' UserStreamAcl and SystemStreamAcl: the defaults.
	for _, name := range []string{acl.DefaultUserStreams, acl.DefaultSystemStreams} {
		a, err := acl.FromMetadata([]byte(`{"$acl": "` + name + `"}`))
		if err != nil || a.Default != name || a.Read != nil {
			t.Errorf("$acl %q: %+v, %v", name, a, err)
		}
	}
	for meta, want := range map[string]string{
		`[1]`:                         "JSON object",
		`{"$acl": "x"}`:               "$acl",
		`{"$acl": 3}`:                 "$acl",
		`{"$acl": {"$r": 5}}`:         "$r",
		`{"$acl": {"$w": ["a", 1]}}`:  "$w",
		`{"$acl": {"$mw": {"a": 1}}}`: "$mw",
	} {
		if _, err := acl.FromMetadata([]byte(meta)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("FromMetadata(%s) = %v, want an error naming %s", meta, err, want)
		}
	}
}

func TestParseSettings(t *testing.T) {
	s, err := acl.ParseSettings([]byte(`{"$userStreamAcl": {"$r": "readers"}, "$systemStreamAcl": {"$r": ["$admins", "auditors"]}}`))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(s.For("orders").Read, []string{"readers"}) || !slices.Equal(s.For("$users").Read, []string{"$admins", "auditors"}) {
		t.Errorf("parsed %+v", s)
	}
	if s, err := acl.ParseSettings(nil); err != nil || s.UserStreams.Read != nil {
		t.Errorf("empty settings: %+v, %v", s, err)
	}
	for data, want := range map[string]string{`5`: "JSON object", `{"$systemStreamAcl": {"$d": true}}`: "$systemStreamAcl"} {
		if _, err := acl.ParseSettings([]byte(data)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseSettings(%s) = %v, want an error naming %s", data, err, want)
		}
	}
}

func TestTarget(t *testing.T) {
	for _, c := range []struct {
		op     acl.Operation
		stream string
		wantOp acl.Operation
		want   string
	}{
		{acl.Read, "orders", acl.Read, "orders"},
		{acl.Read, "$$orders", acl.MetadataRead, "orders"},
		{acl.Write, "$$orders", acl.MetadataWrite, "orders"},
		{acl.Write, "$$$all", acl.MetadataWrite, "$all"},
	} {
		op, stream, err := acl.Target(c.op, c.stream)
		if err != nil || op != c.wantOp || stream != c.want {
			t.Errorf("Target(%v, %q) = %v, %q, %v", c.op, c.stream, op, stream, err)
		}
	}
	if _, _, err := acl.Target(acl.Delete, "$$orders"); err == nil {
		t.Error("deleting a metadata stream is an operation")
	}
}

func TestAllowed(t *testing.T) {
	admin := auth.Principal{Name: "root", Groups: []string{auth.RoleAdmins}}
	ops := auth.Principal{Name: "ops", Groups: []string{auth.RoleOps}}
	ada := auth.Principal{Name: "ada", Groups: []string{"accounting"}}
	none := acl.ACL{}
	own := acl.ACL{Read: []string{"accounting"}, Write: []string{}}
	settings := acl.Settings{UserStreams: acl.ACL{Write: []string{"writers"}}, SystemStreams: acl.ACL{Read: []string{"ada"}}}
	for _, c := range []struct {
		name   string
		who    auth.Principal
		op     acl.Operation
		stream string
		own    acl.ACL
		set    acl.Settings
		want   bool
	}{
		{"defaults: a user stream is everyone's", ada, acl.Delete, "orders", none, acl.Settings{}, true},
		{"defaults: a system stream is the admins'", ada, acl.Read, "$users", none, acl.Settings{}, false},
		{"defaults: ops are users", ops, acl.Read, "$users", none, acl.Settings{}, false},
		{"defaults: $all is a system stream", ada, acl.Read, acl.AllStream, none, acl.Settings{}, false},
		{"an admin reads a system stream", admin, acl.Read, "$users", none, acl.Settings{}, true},
		{"the user admin is an admin", auth.Principal{Name: "admin"}, acl.Read, "$users", none, acl.Settings{}, true},
		{"an admin ignores the ACL", admin, acl.Write, "orders", own, acl.Settings{}, true},
		{"no one writes $all", admin, acl.Write, acl.AllStream, none, acl.Settings{}, false},
		{"no one deletes $all", admin, acl.Delete, acl.AllStream, none, acl.Settings{}, false},
		{"the ACL grants a group", ada, acl.Read, "orders", own, acl.Settings{}, true},
		{"an empty list grants nobody", ada, acl.Write, "orders", own, acl.Settings{}, false},
		{"unset: settings apply", ada, acl.Write, "orders", none, settings, false},
		{"unset in both: the defaults", ada, acl.Delete, "orders", none, settings, true},
		{"settings for system streams", ada, acl.Read, "$users", none, settings, true},
		{"settings grant a user by name", auth.Principal{Name: "writers"}, acl.Write, "orders", none, settings, true},
		{"$all in an ACL grants all", ada, acl.MetadataRead, "$users", acl.ACL{MetadataRead: []string{auth.RoleAll}}, acl.Settings{}, true},
		{"a system stream with the user default", ada, acl.Read, "$mine", acl.ACL{Default: acl.DefaultUserStreams}, acl.Settings{}, true},
		{"a user stream with the system default", ada, acl.Read, "orders", acl.ACL{Default: acl.DefaultSystemStreams}, acl.Settings{}, false},
		{"the system default from settings", ada, acl.Read, "orders", acl.ACL{Default: acl.DefaultSystemStreams}, settings, true},
	} {
		if got := acl.Allowed(c.who, c.op, c.stream, c.own, c.set); got != c.want {
			t.Errorf("%s: Allowed = %v, want %v", c.name, got, c.want)
		}
	}
}

func TestChecker(t *testing.T) {
	ctx := context.Background()
	store := memstore.Open()
	defer store.Close()
	sys := store.System()
	write := func(stream, data string) {
		t.Helper()
		if _, err := sys.Append(ctx, stream, cairn.Any, cairn.EventData{Type: "$metadata", Data: []byte(data)}); err != nil {
			t.Fatal(err)
		}
	}
	c := acl.NewChecker(store)
	ada := auth.NewContext(ctx, auth.Principal{Name: "ada"})
	admin := auth.NewContext(ctx, auth.Principal{Name: "admin"})

	denied := func(err error) bool {
		var d *acl.DeniedError
		return errors.Is(err, acl.ErrAccessDenied) && errors.As(err, &d)
	}
	if err := c.Check(ada, acl.Write, "orders"); err != nil {
		t.Errorf("a user stream without ACLs: %v", err)
	}
	if err := c.Check(ada, acl.Read, "$users"); !denied(err) {
		t.Errorf("a user reading a system stream: %v, want denied", err)
	}
	if err := c.Check(ctx, acl.Write, "orders"); err != nil {
		t.Errorf("an anonymous request holds $all: %v", err)
	}

	write("$$orders", `{"$acl": {"$w": "bob", "$mr": "bob"}}`)
	if err := c.Check(ada, acl.Write, "orders"); !denied(err) || !strings.Contains(err.Error(), `"ada"`) {
		t.Errorf("the stream's ACL: %v, want ada denied", err)
	}
	if err := c.Check(ada, acl.Read, "$$orders"); !denied(err) {
		t.Errorf("reading the metadata stream: %v, want denied by $mr", err)
	}
	if err := c.Check(ada, acl.Write, "$$orders"); err != nil {
		t.Errorf("writing the metadata stream ($mw unset, default $all): %v", err)
	}
	if err := c.Check(ada, acl.Delete, "$$orders"); !denied(err) {
		t.Errorf("deleting a metadata stream: %v, want denied", err)
	}

	write("$settings", `{"$userStreamAcl": {"$r": "auditors"}}`)
	if err := c.Check(ada, acl.Read, "orders"); !denied(err) {
		t.Errorf("$settings grants reads to auditors: %v, want ada denied", err)
	}
	if err := c.Check(auth.NewContext(ctx, auth.Principal{Name: "eve", Groups: []string{"auditors"}}), acl.Read, "orders"); err != nil {
		t.Errorf("an auditor reading: %v", err)
	}

	// An ACL that cannot be read grants nothing, but to admins.
	write("$$ledger", `{"$acl": {"$r": 42}}`)
	if err := c.Check(ada, acl.Write, "ledger"); !denied(err) || !strings.Contains(err.Error(), "$r") {
		t.Errorf("a broken ACL: %v, want denied naming $r", err)
	}
	if err := c.Check(admin, acl.Write, "ledger"); err != nil {
		t.Errorf("an admin and a broken ACL: %v", err)
	}
	write("$settings", `{"$userStreamAcl": 1}`)
	if err := c.Check(ada, acl.Write, "invoices"); !denied(err) {
		t.Errorf("broken settings: %v, want denied", err)
	}
	if err := c.Check(admin, acl.Write, acl.AllStream); !denied(err) {
		t.Errorf("an admin writing $all: %v, want denied", err)
	}
}

// What the ACLs read is checked as it is written: metadata streams take
// JSON objects whose $acl reads, $settings default ACLs that read; other
// streams take anything.
func TestCheckData(t *testing.T) {
	for _, tc := range []struct {
		stream, data string
		ok           bool
	}{
		{"$$order-1", `{"$maxCount":5}`, true},
		{"$$order-1", `{"$acl":{"$r":["ada"],"$w":"ada"}}`, true},
		{"$$order-1", `{"$acl":{"$r":7}}`, false},
		{"$$order-1", `[1,2]`, false},
		{"$$order-1", `null`, false},
		{"$$order-1", `not json`, false},
		{"$$order-1", ``, false},
		{"$settings", `{"$userStreamAcl":{"$r":"$all"}}`, true},
		{"$settings", `{"$systemStreamAcl":{"$w":true}}`, false},
		{"$settings", `[]`, false},
		{"order-1", `not json`, true},
		{"$ce-order", `not json`, true},
	} {
		err := acl.CheckData(tc.stream, []byte(tc.data))
		if (err == nil) != tc.ok {
			t.Errorf("CheckData(%q, %q) = %v, want ok=%v", tc.stream, tc.data, err, tc.ok)
		}
	}
}
