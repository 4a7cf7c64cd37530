// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

package cli

import (
	"bufio"
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meshcert/kubectl-meshcert/core/pki"
	"github.com/meshcert/kubectl-meshcert/harness/provider"
)

func TestRunPrintsProgressAndJUnit(t *testing.T) {
	dir := t.TempDir()
	junit := filepath.Join(dir, "junit.xml")
	var out, errOut bytes.Buffer
	code := Execute(t.Context(), []string{"run", "--provider", "local", "--junit", junit, "../../scenarios/sds-bound.yaml"}, &out, &errOut)
	require.Equal(t, 0, code, errOut.String())
	require.Contains(t, out.String(), "[sds-bound/bound] step 1/9 deploy (line 8) ok")
	require.True(t, strings.HasSuffix(out.String(), "1 passed, 0 failed\n"))
	report, err := os.ReadFile(junit)
	require.NoError(t, err)
	require.Contains(t, string(report), `<testcase name="sds-bound/bound" classname="local"`)

	bad := filepath.Join(dir, "bad.yaml")
	require.NoError(t, os.WriteFile(bad, []byte("name: x\nprofiles: [bound]\nmesh: sds\nsteps:\n- fly: {}\n"), 0o644))
	out.Reset()
	errOut.Reset()
	require.Equal(t, 1, Execute(t.Context(), []string{"run", bad}, &out, &errOut))
	require.Contains(t, errOut.String(), "bad.yaml")
	require.Contains(t, errOut.String(), "line 5")

	require.Equal(t, 1, Execute(t.Context(), []string{"run", "--provider", "nowhere", bad}, &out, &errOut))
	require.Contains(t, errOut.String(), `unknown --provider "nowhere"`)
}

func TestRunOnKindNamesWhatIsMissing(t *testing.T) {
	var out, errOut bytes.Buffer
	code := Execute(t.Context(), []string{"run", "--provider", "kind", "--image", "meshcert/absent:0", "../../scenarios/sds-bound.yaml"}, &out, &errOut)
	require.Equal(t, 1, code)
	// Without an engine the fix is docker-up; with one, building the image.
	require.Regexp(t, "no Docker engine answers .*make docker-up|the image meshcert/absent:0 is not in the Docker engine: build it with `make image`", errOut.String())
}

func TestUpPrintsOneJSONLineAndCleansUp(t *testing.T) {
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	reader, writer := io.Pipe()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan int, 1)
	go func() {
		done <- Execute(ctx, []string{"up", "--profile", "legacy", "--mesh", "auto", "--kubeconfig", kubeconfig, "--workload", "shop/cart"}, writer, io.Discard)
		writer.Close()
	}()
	line, err := bufio.NewReader(reader).ReadString('\n')
	require.NoError(t, err)
	var report UpReport
	require.NoError(t, json.Unmarshal([]byte(line), &report), line)
	require.Equal(t, kubeconfig, report.Kubeconfig)
	require.Equal(t, "legacy", report.Profile)
	require.Equal(t, "file-mount", report.Mesh, "auto asks check, which recommends file-mount on legacy")
	require.NotEmpty(t, report.CAAddress)
	require.FileExists(t, report.CARootFile)
	require.Len(t, report.Workloads, 1)
	w := report.Workloads[0]
	require.Equal(t, "shop", w.Namespace)
	require.Empty(t, w.TokenFile, "the legacy profile cannot project a mesh token")
	require.NotEmpty(t, w.CertDir)
	require.Eventually(t, func() bool {
		_, err := os.Stat(filepath.Join(w.CertDir, "cert-chain.pem"))
		return err == nil
	}, 10*time.Second, 100*time.Millisecond, "the mounted meshcert.cart Secret appears in certDir")
	require.FileExists(t, kubeconfig)

	cancel()
	select {
	case code := <-done:
		require.Equal(t, 0, code)
	case <-time.After(60 * time.Second):
		t.Fatal("up did not stop after its context ended")
	}
	require.NoFileExists(t, kubeconfig, "up removes what it created")
	require.NoDirExists(t, filepath.Dir(report.CARootFile))
}

// up works on every path: each file its JSON line names exists, the
// certificates verify against the CA's root file and name the workload, and
// the plugin's inspect sees the workload.
func TestUpOnEveryPath(t *testing.T) {
	for name, tc := range map[string]struct {
		profile, mesh, workload string
	}{
		"bound sds":         {profile: "bound", mesh: "sds", workload: "shop/cart"},
		"bound file-mount":  {profile: "bound", mesh: "file-mount", workload: "shop/cart"},
		"legacy file-mount": {profile: "legacy", mesh: "file-mount", workload: "default/alpha"},
	} {
		t.Run(name, func(t *testing.T) {
			reader, writer := io.Pipe()
			ctx, cancel := context.WithCancel(t.Context())
			done := make(chan int, 1)
			go func() {
				done <- Execute(ctx, []string{"up", "--profile", tc.profile, "--mesh", tc.mesh, "--workload", tc.workload}, writer, io.Discard)
				writer.Close()
			}()
			defer func() {
				cancel()
				<-done
			}()
			line, err := bufio.NewReader(reader).ReadString('\n')
			require.NoError(t, err)
			var report UpReport
			require.NoError(t, json.Unmarshal([]byte(line), &report), line)
			require.Equal(t, tc.mesh, report.Mesh)
			rootPEM, err := os.ReadFile(report.CARootFile)
			require.NoError(t, err)
			roots, err := pki.DecodeCertificates(rootPEM)
			require.NoError(t, err)
			require.Len(t, report.Workloads, 1)
			w := report.Workloads[0]
			ns, sa, _ := strings.Cut(tc.workload, "/")
			id := "spiffe://cluster.local/ns/" + ns + "/sa/" + sa

			var inspect []string
			var verified string
			if tc.mesh == "sds" {
				require.FileExists(t, report.AgentSock)
				require.FileExists(t, w.TokenFile)
				require.Empty(t, w.CertDir)
				inspect = []string{"inspect", "pod", w.Pod, "-n", ns, "--ca-namespace", "meshcert-system", "-o", "json"}
				verified = `"chainsToCurrentRoot": true`
			} else {
				require.Empty(t, w.TokenFile)
				var chain []*x509.Certificate
				require.Eventually(t, func() bool {
					data, err := os.ReadFile(filepath.Join(w.CertDir, "cert-chain.pem"))
					if err != nil {
						return false
					}
					chain, err = pki.DecodeCertificates(data)
					return err == nil && len(chain) > 0
				}, 30*time.Second, 100*time.Millisecond, "the mounted Secret appears in certDir %s", w.CertDir)
				require.FileExists(t, filepath.Join(w.CertDir, "key.pem"))
				_, err := pki.Verify(chain, roots, time.Now())
				require.NoError(t, err, "the mounted chain verifies against the CA's root file")
				require.Equal(t, id, chain[0].URIs[0].String())
				inspect = []string{"inspect", "secret", "meshcert." + sa, "-n", ns, "-o", "json"}
				verified = `"verified": true`
			}
			require.Eventually(t, func() bool {
				out, _, code := provider.RunPlugin(t.Context(), report.Kubeconfig, inspect...)
				return code == 0 && strings.Contains(out, id) && strings.Contains(out, verified)
			}, 30*time.Second, 200*time.Millisecond, "kubectl meshcert %s does not see %s verified", strings.Join(inspect, " "), id)
		})
	}
}

func TestBenchTakesTheFleetsFlagsAndNamesAMissingPeer(t *testing.T) {
	var out, errOut bytes.Buffer
	code := Execute(t.Context(), []string{"bench", "--binaries", t.TempDir(), "--fleet=false", "--workloads", "10", "--nodes", "2",
		"--token-verification", "local", "--ca-replicas", "1"}, &out, &errOut)
	require.Equal(t, 1, code)
	require.Contains(t, errOut.String(), "istio-peer (build it with make bench)", "the flags parse; the run stops at the missing Istio peer")
}
