// Package cligroup makes cobra commands that only hold subcommands behave
// as a user expects: the group alone prints its help, and an unknown
// subcommand is an error (exit 1) naming the ones there are. Cobra's own
// behaviour for a group without Run is to print the help and succeed
// whatever follows it, so `signet log uplaod` looked like it worked.
package cligroup

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"
)

// Make turns cmd into a group command and returns it.
func Make(cmd *cobra.Command) *cobra.Command {
	cmd.Args = cobra.ArbitraryArgs
	if cmd.SuggestionsMinimumDistance <= 0 {
		cmd.SuggestionsMinimumDistance = 2 // cobra's default, which only its root lookup applies
	}
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if len(args) == 0 {
			return cmd.Help()
		}
		var names []string
		for _, c := range cmd.Commands() {
			if c.IsAvailableCommand() {
				names = append(names, c.Name())
			}
		}
		msg := fmt.Sprintf("unknown command %q for %q; its commands are %s", args[0], cmd.CommandPath(), strings.Join(names, ", "))
		if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
			msg += fmt.Sprintf(" (did you mean %q?)", s[0])
		}
		return fmt.Errorf("%s; see %s --help", msg, cmd.CommandPath())
	}
	return cmd
}
