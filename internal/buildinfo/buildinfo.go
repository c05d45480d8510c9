// Package buildinfo says which cairn this is: one version that the cairn
// command prints and the server advertises to its clients.
package buildinfo

import (
	"runtime/debug"
	"sync"
)

// Protocol is the KurrentDB server version the server reports, from which
// the official clients decide which features to use: 26.1, whose
// AppendRecords is the latest call the server implements.
const Protocol = "26.1.0"

// version is set at build time:
//
//	go build -ldflags "-X github.com/cairndb/cairn/internal/buildinfo.version=v1.2.3" ./cmd/cairn
var version = ""

var fromBuild = sync.OnceValue(func() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "devel"
	}
	if v := info.Main.Version; v != "" && v != "(devel)" {
		return v // go install …@v1.2.3, or a build in a repository with tags
	}
	for _, s := range info.Settings {
		if s.Key == "vcs.revision" && len(s.Value) >= 12 {
			return "devel-" + s.Value[:12]
		}
	}
	return "devel"
})

// Version returns cairn's version: the one set with -ldflags, else the
// module version the go command recorded (go install …@v1.2.3), else
// "devel" with the commit when known.
func Version() string {
	if version != "" {
		return version
	}
	return fromBuild()
}

// Advertised returns the version the server reports to clients: the
// protocol version, then cairn's, as "26.1.0-cairn-v1.2.3". The clients
// read the first three numbers and ignore what follows a hyphen.
func Advertised() string { return Protocol + "-cairn-" + Version() }
