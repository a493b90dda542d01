package main

import "github.com/spf13/cobra"

// extraCommands lists the commands that live in their own files beyond
// version, plan and demo.
func extraCommands() []*cobra.Command {
	return []*cobra.Command{newReplayCmd(), withDevice(newVerifyCmd()), newRecordCmd(), newRegressCmd(), newMergeCmd(), newGenCmd(), newDiffCmd(), newExplainCmd()}
}
