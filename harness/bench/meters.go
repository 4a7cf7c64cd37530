// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

package bench

import (
	"context"

	"github.com/prometheus/procfs"
	"k8s.io/client-go/rest"

	"github.com/meshcert/kubectl-meshcert/harness/provider"
)

func stat(pid int) (procfs.ProcStat, error) {
	proc, err := procfs.NewProc(pid)
	if err != nil {
		return procfs.ProcStat{}, err
	}
	return proc.Stat()
}

// CPUSeconds meters the CPU time process pid has used.
func CPUSeconds(pid int) Meter {
	return func(context.Context) (float64, error) {
		st, err := stat(pid)
		return st.CPUTime(), err
	}
}

// RSS is the resident memory of process pid, in bytes.
func RSS(pid int) (float64, error) {
	st, err := stat(pid)
	return float64(st.ResidentMemory()), err
}

// TokenReviews meters the TokenReviews the API server has answered, from
// its own metrics, whoever sent them.
func TokenReviews(client rest.Interface) Meter {
	return func(ctx context.Context) (float64, error) {
		text, err := client.Get().AbsPath("/metrics").DoRaw(ctx)
		if err != nil {
			return 0, err
		}
		return provider.MetricSum(text, "apiserver_request_total", map[string]string{"resource": "tokenreviews", "verb": "POST"})
	}
}
