// Package version describes the running binary from the build information
// the Go toolchain embeds: the module version (a tag, or a pseudo-version
// for a build from a commit) and, for builds in a git checkout, the commit
// and whether the work tree had changes.
package version

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Info is what `signet version` and `signet-server version` print.
type Info struct {
	Version   string `json:"version"`
	Commit    string `json:"commit,omitempty"`
	Modified  bool   `json:"modified,omitempty"`
	GoVersion string `json:"goVersion"`
	Platform  string `json:"platform"`
}

// Get reads the build information; a binary built without it (go run of
// a file) reports version "(devel)".
func Get() Info {
	in := Info{Version: "(devel)", GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return in
	}
	if v := bi.Main.Version; v != "" {
		in.Version = v
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			in.Commit = s.Value
		case "vcs.modified":
			in.Modified = s.Value == "true"
		}
	}
	return in
}

// String is Info in one line, e.g.
// "signet v0.1.0 (commit 3bc1d57f, modified) go1.26.0 linux/amd64".
func (in Info) String(program string) string {
	s := program + " " + in.Version
	if in.Commit != "" {
		c := in.Commit
		if len(c) > 12 {
			c = c[:12]
		}
		if in.Modified {
			c += ", modified"
		}
		s += " (commit " + c + ")"
	}
	return fmt.Sprintf("%s %s %s", s, in.GoVersion, in.Platform)
}
