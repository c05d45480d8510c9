package server

import (
	"encoding/base64"
	"strings"
	"testing"
)

func TestParseBasic(t *testing.T) {
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	long := strings.Repeat("p", 400) // decoded beyond the stack buffer
	for _, tc := range []struct {
		header, user, password string
		ok                     bool
	}{
		{"Basic " + b64("admin:changeit"), "admin", "changeit", true},
		{"basic  " + b64("ada:s3:cret") + " ", "ada", "s3:cret", true},
		{"BASIC " + b64("ada:"), "ada", "", true},
		{"Basic " + b64("ada:"+long), "ada", long, true},
		{"Basic " + b64(long+":x"), long, "x", true},
		{"Basic " + b64("no colon"), "", "", false},
		{"Basic not*base64", "", "", false},
		{"Bearer " + b64("ada:x"), "", "", false},
		{"Basic", "", "", false},
		{"", "", "", false},
	} {
		user, password, ok := parseBasic(tc.header)
		if ok != tc.ok || ok && (user != tc.user || password != tc.password) {
			t.Errorf("parseBasic(%.40q) = %.20q, %.20q, %v; want %.20q, %.20q, %v", tc.header, user, password, ok, tc.user, tc.password, tc.ok)
		}
	}
}
