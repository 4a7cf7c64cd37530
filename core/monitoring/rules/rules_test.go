// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

package rules_test

import (
	"flag"
	"os"
	"os/exec"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/meshcert/kubectl-meshcert/core/monitoring/rules"
)

var update = flag.Bool("update", false, "rewrite meshcert.rules.yaml from the code")

const rulesFile = "meshcert.rules.yaml"

func TestCommittedRulesAreGenerated(t *testing.T) {
	generated, err := rules.Marshal(rules.DefaultThresholds())
	require.NoError(t, err)
	if *update {
		require.NoError(t, os.WriteFile(rulesFile, generated, 0o644))
	}
	committed, err := os.ReadFile(rulesFile)
	require.NoError(t, err)
	require.Equal(t, string(generated), string(committed), "run make monitoring to regenerate %s", rulesFile)
}

// Promtool returns the path of promtool, failing the test when it is
// missing: `make prometheus` installs it.
func Promtool(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("promtool")
	require.NoError(t, err, "promtool is needed to test the alerting rules: run make prometheus")
	return path
}

func TestRulesWithPromtool(t *testing.T) {
	promtool := Promtool(t)
	for _, args := range [][]string{
		{"check", "rules", rulesFile},
		{"test", "rules", "testdata/meshcert.rules_test.yaml"},
	} {
		out, err := exec.Command(promtool, args...).CombinedOutput()
		require.NoError(t, err, "promtool %v:\n%s", args, out)
	}
}
