package version

import (
	"runtime"
	"strings"
	"testing"
)

func TestString(t *testing.T) {
	for _, tt := range []struct {
		in   Info
		want string
	}{
		{Info{Version: "v1.2.3", GoVersion: "go1.26.0", Platform: "linux/amd64"}, "signet v1.2.3 go1.26.0 linux/amd64"},
		{Info{Version: "(devel)", Commit: "3bc1d57f0123456789", Modified: true, GoVersion: "go1.26.0", Platform: "linux/arm64"}, "signet (devel) (commit 3bc1d57f0123, modified) go1.26.0 linux/arm64"},
	} {
		if got := tt.in.String("signet"); got != tt.want {
			t.Errorf("got %q, want %q", got, tt.want)
		}
	}
	if got := Get(); got.GoVersion != runtime.Version() || !strings.Contains(got.Platform, "/") || got.Version == "" {
		t.Fatalf("Get() = %+v", got)
	}
}
