// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

// Package completion prints shell completion scripts, including the
// kubectl_complete-meshcert helper that makes `kubectl meshcert <TAB>` work.
package completion

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"
)

// KubectlScript is the kubectl_complete-meshcert program: kubectl runs it to
// complete `kubectl meshcert ...`.
const KubectlScript = `#!/usr/bin/env sh
# Completes "kubectl meshcert ..." by asking the plugin itself (cobra's __complete).
kubectl meshcert __complete "$@"
`

// NewCommand returns the completion command for root.
func NewCommand(root *cobra.Command, display string) *cobra.Command {
	return &cobra.Command{
		Use:   "completion bash|zsh|fish|powershell|kubectl",
		Short: "Print a shell completion script",
		Long: fmt.Sprintf(`Print a completion script for %[1]s.

  source <(%[1]s completion bash)

For "kubectl meshcert <TAB>", put the kubectl_complete-meshcert program on your PATH:

  %[1]s completion kubectl > kubectl_complete-meshcert && chmod +x kubectl_complete-meshcert`, display),
		Example: fmt.Sprintf(`  # Complete in this bash session
  source <(%[1]s completion bash)

  # Let kubectl complete "kubectl meshcert <TAB>"
  %[1]s completion kubectl > ~/bin/kubectl_complete-meshcert && chmod +x ~/bin/kubectl_complete-meshcert`, display),
		ValidArgs: []string{"bash", "zsh", "fish", "powershell", "kubectl"},
		Args:      cobra.MatchAll(cobra.ExactArgs(1), cobra.OnlyValidArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			out := cmd.OutOrStdout()
			switch args[0] {
			case "bash":
				return root.GenBashCompletionV2(out, true)
			case "zsh":
				return root.GenZshCompletion(out)
			case "fish":
				return root.GenFishCompletion(out, true)
			case "powershell":
				return root.GenPowerShellCompletionWithDesc(out)
			}
			_, err := io.WriteString(out, KubectlScript)
			return err
		},
	}
}
