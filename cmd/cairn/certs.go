package main

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/cairndb/cairn/server"
	"github.com/spf13/cobra"
)

func newCertsCmd() *cobra.Command {
	var (
		dir      string
		userList []string
		opts     server.CertOptions
	)
	cmd := &cobra.Command{
		Use:   "certs",
		Short: "Make a development CA and node certificate for cairn serve",
		Long: `Make a certificate authority and a node certificate signed by it (ECDSA
P-256), for development: ca.crt, ca.key, node.crt and node.key in --dir.
The node certificate is valid for localhost, 127.0.0.1 and ::1, plus every
--host (a DNS name or an IP address). --validity takes days (30d) or a Go
duration (720h). Clients trust the server through ca.crt. Keep ca.key
private: whoever holds it can make certificates the clients trust.

With --user, make instead a client certificate for each user named, signed
by the CA already in --dir: user-NAME.crt and user-NAME.key. Its common
name is the user's name; a server started with --tls-client-ca ca.crt
authenticates a client that presents it as that user (who must exist).`,
		Example: `  cairn certs --dir ./certs --host db.internal --validity 90d
  cairn serve --tls-cert certs/node.crt --tls-key certs/node.key
  cairn certs --dir ./certs --user ada`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			out := cmd.OutOrStdout()
			if len(userList) > 0 {
				for _, u := range userList {
					files, err := server.GenerateUserCert(dir, u, opts)
					if err != nil {
						return err
					}
					fmt.Fprintf(out, "user %s: certificate %s, key %s\n", u, files.Cert, files.Key)
				}
				fmt.Fprintf(out, "\ncairn serve … --tls-client-ca %s\nkurrentdb://localhost:2113?tls=true&tlsCAFile=%s&userCertFile=…&userKeyFile=…\n",
					filepath.Join(dir, "ca.crt"), filepath.Join(dir, "ca.crt"))
				return nil
			}
			for _, h := range opts.Hosts {
				if err := checkHost(h); err != nil {
					return err
				}
			}
			if !opts.Overwrite {
				for _, name := range []string{"ca.crt", "ca.key", "node.crt", "node.key"} {
					p := filepath.Join(dir, name)
					if _, err := os.Stat(p); err == nil {
						return fmt.Errorf("certs: %s exists: pass --force to overwrite the files in %s, or choose another --dir", p, dir)
					}
				}
			}
			files, err := server.GenerateCerts(dir, opts)
			if err != nil {
				return err
			}
			fmt.Fprintf(out, "CA certificate:   %s\nCA key:           %s\nnode certificate: %s\nnode key:         %s\n",
				files.CACert, files.CAKey, files.NodeCert, files.NodeKey)
			fmt.Fprintf(out, "\ncairn serve --tls-cert %s --tls-key %s\nkurrentdb://admin:PASSWORD@localhost:2113?tls=true&tlsCAFile=%s\n",
				files.NodeCert, files.NodeKey, files.CACert)
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "./certs", "the directory to write the files to")
	cmd.Flags().StringSliceVar(&opts.Hosts, "host", nil, "an extra DNS name or IP address for the node certificate (repeatable)")
	cmd.Flags().Var(&validity{&opts.Validity}, "validity", "how long the certificates are valid: days (90d) or a duration (2160h) (default 365d)")
	cmd.Flags().BoolVar(&opts.Overwrite, "force", false, "overwrite existing files")
	cmd.Flags().StringSliceVar(&userList, "user", nil, "make a client certificate for this user, signed by the CA in --dir (repeatable)")
	return cmd
}

// validity is a --validity flag: days ("30d") or a Go duration, positive.
type validity struct{ d *time.Duration }

func (v *validity) String() string {
	if v.d == nil || *v.d == 0 {
		return ""
	}
	if *v.d%(24*time.Hour) == 0 {
		return strconv.FormatInt(int64(*v.d/(24*time.Hour)), 10) + "d"
	}
	return v.d.String()
}

func (v *validity) Type() string { return "days" }

func (v *validity) Set(s string) error {
	var d time.Duration
	if n, ok := strings.CutSuffix(s, "d"); ok {
		days, err := strconv.ParseFloat(n, 64)
		if err != nil {
			return fmt.Errorf("%q is not a number of days (30d) or a duration (720h)", s)
		}
		d = time.Duration(days * float64(24*time.Hour))
	} else {
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			return fmt.Errorf("%q is not a number of days (30d) or a duration (720h)", s)
		}
	}
	if d <= 0 {
		return fmt.Errorf("%q: must be positive", s)
	}
	*v.d = d
	return nil
}

// checkHost accepts an IP address or a DNS name (a leading "*." for a
// wildcard).
func checkHost(h string) error {
	if net.ParseIP(h) != nil {
		return nil
	}
	bad := func(why string) error {
		if host, port, err := net.SplitHostPort(h); err == nil && port != "" {
			return fmt.Errorf("--host %q: %s; give the host without the port: --host %s", h, why, host)
		}
		return fmt.Errorf("--host %q: %s", h, why)
	}
	name := strings.TrimPrefix(h, "*.")
	if name == "" || len(name) > 253 {
		return bad("not a DNS name or an IP address")
	}
	for _, label := range strings.Split(name, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return bad("not a DNS name or an IP address")
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return bad(fmt.Sprintf("not a DNS name or an IP address (%q is not allowed)", c))
			}
		}
	}
	return nil
}
