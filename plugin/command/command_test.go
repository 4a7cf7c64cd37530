// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

package command

import (
	"context"
	"errors"
	"testing"

	"github.com/spf13/cobra"
	"github.com/stretchr/testify/require"
)

type recorder struct {
	calls       []string
	invalid     bool
	args        []string
	ranWithArgs []string
}

func (r *recorder) Complete(args []string) error {
	r.calls, r.args = append(r.calls, "complete"), args
	return nil
}

func (r *recorder) Validate() error {
	r.calls = append(r.calls, "validate")
	if r.invalid {
		return errors.New("--flag is wrong")
	}
	return nil
}

func (r *recorder) Run(ctx context.Context) error {
	r.calls, r.ranWithArgs = append(r.calls, "run"), r.args
	return ctx.Err()
}

func TestRunECompletesValidatesThenRuns(t *testing.T) {
	tests := map[string]struct {
		invalid   bool
		wantCalls []string
		wantErr   string
	}{
		"valid options run":         {wantCalls: []string{"complete", "validate", "run"}},
		"invalid options never run": {invalid: true, wantCalls: []string{"complete", "validate"}, wantErr: "--flag is wrong"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			r := &recorder{invalid: tc.invalid}
			cmd := &cobra.Command{Use: "x", RunE: RunE(r)}
			cmd.SetArgs([]string{"a", "b"})
			err := cmd.ExecuteContext(context.Background())
			require.Equal(t, tc.wantCalls, r.calls)
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, []string{"a", "b"}, r.ranWithArgs)
		})
	}
}
