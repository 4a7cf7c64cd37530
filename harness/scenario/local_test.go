// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

package scenario_test

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/meshcert/kubectl-meshcert/harness/local"
	"github.com/meshcert/kubectl-meshcert/harness/provider"
	"github.com/meshcert/kubectl-meshcert/harness/scenario"
)

// TestScenariosOnLocalProvider runs every scenario file on the embedded
// control plane, as `make demo` does.
func TestScenariosOnLocalProvider(t *testing.T) {
	scenarios, err := scenario.LoadAll([]string{"../../scenarios"})
	require.NoError(t, err)
	var out bytes.Buffer
	runner := &scenario.Runner{NewProvider: func() provider.Provider { return local.New() }, Out: &out, LogDir: t.TempDir()}
	results := runner.Run(t.Context(), scenarios)
	t.Log(out.String())
	require.Len(t, results, len(scenarios), "every scenario runs on the local provider, none skipped")
	for _, r := range results {
		require.NoError(t, r.Err, "%s/%s", r.Scenario, r.Profile)
	}
	require.True(t, strings.HasSuffix(strings.TrimSpace(out.String()), fmt.Sprintf("%d passed, 0 failed", len(scenarios))))
}
