package cligroup

import (
	"bytes"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

func TestGroup(t *testing.T) {
	newRoot := func() (*cobra.Command, *bytes.Buffer) {
		root := &cobra.Command{Use: "tool", SilenceErrors: true, SilenceUsage: true}
		group := Make(&cobra.Command{Use: "log", Short: "log things", Example: "  tool log upload"})
		group.AddCommand(&cobra.Command{Use: "upload", Run: func(*cobra.Command, []string) {}}, &cobra.Command{Use: "search", Run: func(*cobra.Command, []string) {}})
		root.AddCommand(group)
		var out bytes.Buffer
		root.SetOut(&out)
		root.SetErr(&out)
		return root, &out
	}
	for _, tt := range []struct {
		args    []string
		wantErr string
		wantOut string
	}{
		{args: []string{"log"}, wantOut: "tool log upload"},
		{args: []string{"log", "uplaod"}, wantErr: `unknown command "uplaod" for "tool log"; its commands are search, upload (did you mean "upload"?); see tool log --help`},
		{args: []string{"log", "frobnicate"}, wantErr: `unknown command "frobnicate" for "tool log"; its commands are search, upload; see tool log --help`},
		{args: []string{"log", "upload"}},
	} {
		root, out := newRoot()
		root.SetArgs(tt.args)
		err := root.Execute()
		switch {
		case tt.wantErr == "" && err != nil:
			t.Errorf("%v: %v", tt.args, err)
		case tt.wantErr != "" && (err == nil || err.Error() != tt.wantErr):
			t.Errorf("%v: error %v, want %q", tt.args, err, tt.wantErr)
		case !strings.Contains(out.String(), tt.wantOut):
			t.Errorf("%v: output %q, want it to contain %q", tt.args, out, tt.wantOut)
		}
	}
}
