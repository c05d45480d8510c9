package nats_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	natsurl "github.com/cairndb/cairn/storeurl/nats"
	"github.com/nats-io/jwt/v2"
	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"
)

func TestParse(t *testing.T) {
	o, err := natsurl.Parse("nats://u:p@h1:4222,h2:4223?dir=./n1&stream=ORDERS&replicas=1&node=a")
	if err != nil {
		t.Fatal(err)
	}
	if o.URL != "nats://u:p@h1:4222,nats://u:p@h2:4223" || o.Dir != "./n1" || o.Stream != "ORDERS" || o.Replicas != 1 || o.NodeID != "a" {
		t.Fatalf("%+v", o)
	}
	for _, bad := range []string{"nats://", "nats://h1:4222?replicas=9", "nats://h1:4222?colour=red", "nats://h 1:4222"} {
		if _, err := natsurl.Parse(bad); err == nil {
			t.Errorf("Parse(%q) succeeded", bad)
		}
	}
	if _, err := natsurl.Parse("nats://u:secret@h1:4222?replicas=0"); err == nil || strings.Contains(err.Error(), "secret") {
		t.Errorf("error %v shows the password or is missing", err)
	}
}

// A NATS server that knows its users by their NKeys: a node reaches it
// with the URL's nkey, the file of the user's seed, and without it, or
// with another user's seed, is refused.
func TestNkey(t *testing.T) {
	dir := t.TempDir()
	user, seedFile := userSeed(t, dir, "user.nk")
	pub := publicKey(t, user)
	_, otherFile := userSeed(t, dir, "other.nk")
	srv := startNATS(t, &natsserver.Options{Nkeys: []*natsserver.NkeyUser{{Nkey: pub}}})
	base := "nats://" + srv.Addr().String() + "?replicas=1"
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	appendAndRead(ctx, t, base+"&dir="+filepath.Join(dir, "node")+"&nkey="+seedFile)
	t.Run("no nkey", func(t *testing.T) {
		refused(ctx, t, base+"&dir="+filepath.Join(dir, "none"), "Authorization Violation")
	})
	t.Run("another user's seed", func(t *testing.T) {
		refused(ctx, t, base+"&dir="+filepath.Join(dir, "other")+"&nkey="+otherFile, "Authorization Violation")
	})
}

// A NATS server in operator mode, which knows accounts by their JWTs
// (signed by the operator it trusts) and users by theirs (signed by their
// account): a node reaches it with the URL's creds, the user's credentials
// file, and without it, or with the credentials of a user of an account
// the operator did not sign, is refused.
func TestCreds(t *testing.T) {
	dir := t.TempDir()
	operator := mustOperator(t)
	sysKey, sysJWT := account(t, operator, "SYS", false)
	appKey, appJWT := account(t, operator, "APP", true)
	sysPub, appPub := publicKey(t, sysKey), publicKey(t, appKey)
	oc := jwt.NewOperatorClaims(publicKey(t, operator))
	oc.Name = "cairn-test"
	oc.SystemAccount = sysPub
	// Encode fills in oc's issuer (the operator itself), as the server
	// checks.
	if _, err := oc.Encode(operator); err != nil {
		t.Fatal(err)
	}
	resolver := &natsserver.MemAccResolver{}
	for pub, token := range map[string]string{sysPub: sysJWT, appPub: appJWT} {
		if err := resolver.Store(pub, token); err != nil {
			t.Fatal(err)
		}
	}
	srv := startNATS(t, &natsserver.Options{
		TrustedOperators: []*jwt.OperatorClaims{oc},
		AccountResolver:  resolver,
		SystemAccount:    sysPub,
	})
	credsFile := userCreds(t, appKey, filepath.Join(dir, "app.creds"))
	// An account that the server's operator did not sign.
	otherKey, _ := account(t, mustOperator(t), "OTHER", true)
	otherFile := userCreds(t, otherKey, filepath.Join(dir, "other.creds"))

	base := "nats://" + srv.Addr().String() + "?replicas=1"
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	appendAndRead(ctx, t, base+"&dir="+filepath.Join(dir, "node")+"&creds="+credsFile)
	t.Run("no creds", func(t *testing.T) {
		refused(ctx, t, base+"&dir="+filepath.Join(dir, "none"), "Authorization Violation")
	})
	t.Run("another operator's user", func(t *testing.T) {
		refused(ctx, t, base+"&dir="+filepath.Join(dir, "other")+"&creds="+otherFile, "Authorization Violation")
	})
}

// The creds and nkey parameters: each file is read and checked by Parse,
// with errors that name the parameter and the file and never show what
// the file holds.
func TestParseCredentials(t *testing.T) {
	dir := t.TempDir()
	account, _ := account(t, mustOperator(t), "APP", true)
	creds := userCreds(t, account, filepath.Join(dir, "user.creds"))
	_, seed := userSeed(t, dir, "user.nk")

	for _, params := range []string{"creds=" + creds, "nkey=" + seed, "Creds=" + creds, "NKEY=" + seed} {
		o, err := natsurl.Parse("nats://h1:4222,h2:4222?" + params)
		if err != nil {
			t.Errorf("Parse(…?%s): %v", params, err)
		} else if len(o.NATSOptions) != 1 || o.URL != "nats://h1:4222,nats://h2:4222" {
			t.Errorf("Parse(…?%s) = %+v", params, o)
		}
	}

	accountSeedFile := filepath.Join(dir, "account.nk")
	accountSeed, err := account.Seed()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(accountSeedFile, accountSeed, 0o600); err != nil {
		t.Fatal(err)
	}
	userSeedBytes, err := os.ReadFile(seed)
	if err != nil {
		t.Fatal(err)
	}
	// A credentials file whose seed is not its JWT's user's (which
	// jwt.FormatUserConfig refuses to write): a user's, with another
	// user's seed in place of its own.
	mismatched := filepath.Join(dir, "mismatched.creds")
	user := mustUser(t)
	writeCreds(t, mismatched, account, jwt.NewUserClaims(publicKey(t, user)), user)
	b, err := os.ReadFile(mismatched)
	if err != nil {
		t.Fatal(err)
	}
	ownSeed, err := user.Seed()
	if err != nil {
		t.Fatal(err)
	}
	b = bytes.Replace(b, ownSeed, bytes.TrimSpace(userSeedBytes), 1)
	if err := os.WriteFile(mismatched, b, 0o600); err != nil {
		t.Fatal(err)
	}
	expired := filepath.Join(dir, "expired.creds")
	user = mustUser(t)
	uc := jwt.NewUserClaims(publicKey(t, user))
	uc.Expires = time.Now().Add(-time.Hour).Unix()
	writeCreds(t, expired, account, uc, user)
	missing := filepath.Join(dir, "missing.creds")

	for _, bad := range []struct{ url, want string }{
		{"nats://h1:4222?creds=" + creds + "&nkey=" + seed, "creds and nkey are two ways"},
		{"nats://u:secret@h1:4222?creds=" + creds, "creds and a user in the URL"},
		{"nats://u:secret@h1:4222?nkey=" + seed, "nkey and a user in the URL"},
		{"nats://token@h1:4222?nkey=" + seed, "nkey and a user in the URL"},
		{"nats://h1:4222?creds=" + missing, `creds="` + missing + `": no such file`},
		{"nats://h1:4222?NKey=" + missing, `NKey="` + missing + `": no such file`},
		{"nats://h1:4222?creds=", "creds is empty"},
		{"nats://h1:4222?nkey=", "nkey is empty"},
		{"nats://h1:4222?creds=" + dir, `creds="` + dir + `"`},
		{"nats://h1:4222?creds=" + seed, "no valid user JWT"},
		{"nats://h1:4222?creds=" + mismatched, "the NKey seed is not the one of the JWT's user"},
		{"nats://h1:4222?creds=" + expired, "expired"},
		{"nats://h1:4222?nkey=" + creds, "creds="},
		{"nats://h1:4222?nkey=" + accountSeedFile, "no user NKey seed"},
		{"nats://h1:4222?credentials=" + creds, "creds, nkey"},
	} {
		_, err := natsurl.Parse(bad.url)
		if err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("Parse(%s): %v; want an error saying %q", bad.url, err, bad.want)
			continue
		}
		for _, secret := range [][]byte{[]byte("secret"), accountSeed, userSeedBytes[:20]} {
			if strings.Contains(err.Error(), string(secret)) {
				t.Errorf("Parse(%s): error %q shows a secret", bad.url, err)
			}
		}
	}
}

// userSeed creates a user's NKey and writes its seed to dir/name.
func userSeed(t *testing.T, dir, name string) (nkeys.KeyPair, string) {
	t.Helper()
	kp := mustUser(t)
	seed, err := kp.Seed()
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, name)
	if err := os.WriteFile(file, append(seed, '\n'), 0o600); err != nil {
		t.Fatal(err)
	}
	return kp, file
}

// account creates an account signed by operator, with JetStream when js
// is set, and returns its key and JWT.
func account(t *testing.T, operator nkeys.KeyPair, name string, js bool) (nkeys.KeyPair, string) {
	t.Helper()
	kp, err := nkeys.CreateAccount()
	if err != nil {
		t.Fatal(err)
	}
	ac := jwt.NewAccountClaims(publicKey(t, kp))
	ac.Name = name
	if js {
		ac.Limits.JetStreamLimits = jwt.JetStreamLimits{MemoryStorage: -1, DiskStorage: -1, Streams: -1, Consumer: -1}
	}
	token, err := ac.Encode(operator)
	if err != nil {
		t.Fatal(err)
	}
	return kp, token
}

// userCreds creates a user of the account and writes its credentials
// file (JWT and seed) to file.
func userCreds(t *testing.T, account nkeys.KeyPair, file string) string {
	t.Helper()
	user := mustUser(t)
	uc := jwt.NewUserClaims(publicKey(t, user))
	uc.Name = "cairn"
	writeCreds(t, file, account, uc, user)
	return file
}

func mustOperator(t *testing.T) nkeys.KeyPair {
	t.Helper()
	kp, err := nkeys.CreateOperator()
	if err != nil {
		t.Fatal(err)
	}
	return kp
}

func mustUser(t *testing.T) nkeys.KeyPair {
	t.Helper()
	kp, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	return kp
}

func publicKey(t *testing.T, kp nkeys.KeyPair) string {
	t.Helper()
	pub, err := kp.PublicKey()
	if err != nil {
		t.Fatal(err)
	}
	return pub
}

// writeCreds writes a credentials file of the user claims uc, signed by
// account, and user's seed.
func writeCreds(t *testing.T, file string, account nkeys.KeyPair, uc *jwt.UserClaims, user nkeys.KeyPair) {
	t.Helper()
	token, err := uc.Encode(account)
	if err != nil {
		t.Fatal(err)
	}
	seed, err := user.Seed()
	if err != nil {
		t.Fatal(err)
	}
	creds, err := jwt.FormatUserConfig(token, seed)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, creds, 0o600); err != nil {
		t.Fatal(err)
	}
}
