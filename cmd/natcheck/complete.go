package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"
)

// completeValues makes shell completion (natcheck completion bash|zsh|fish)
// offer values for a flag. A flag that takes a comma-separated list
// completes its last item, after the ones already typed.
func completeValues(cmd *cobra.Command, flag string, values ...string) {
	_ = cmd.RegisterFlagCompletionFunc(flag, func(_ *cobra.Command, _ []string, typed string) ([]string, cobra.ShellCompDirective) {
		prefix := ""
		if i := strings.LastIndexByte(typed, ','); i >= 0 {
			prefix = typed[:i+1]
		}
		out := make([]string, 0, len(values))
		for _, v := range values {
			out = append(out, prefix+v)
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	})
}

// plural returns "1 flow" or "2 flows".
func plural(n uint64, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
