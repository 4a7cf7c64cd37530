// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

package plugin_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/dynamic"
	"k8s.io/utils/ptr"

	"github.com/meshcert/kubectl-meshcert/core/monitoring/rules"
	"github.com/meshcert/kubectl-meshcert/core/pki/pkitest"

	"github.com/meshcert/kubectl-meshcert/core/fleet"

	"github.com/meshcert/kubectl-meshcert/core/ca"
	"github.com/meshcert/kubectl-meshcert/core/filemount"
	"github.com/meshcert/kubectl-meshcert/core/mesh"
	"github.com/meshcert/kubectl-meshcert/core/pki"
	"github.com/meshcert/kubectl-meshcert/harness/localcluster"
	"github.com/meshcert/kubectl-meshcert/harness/localcluster/localclustertest"
	"github.com/meshcert/kubectl-meshcert/plugin"
)

func clusterFor(t testing.TB, p localcluster.Profile) *localcluster.Cluster {
	return localclustertest.Cluster(t, p)
}

func TestMain(m *testing.M) { localclustertest.Main(m) }

// result is one run of kubectl meshcert.
type result struct {
	code   int
	stdout string
	stderr string
}

// run runs kubectl meshcert against c with args, as the binary would.
func run(t testing.TB, c *localcluster.Cluster, stdin string, args ...string) result {
	t.Helper()
	streams, in, out, errOut := genericiooptions.NewTestIOStreams()
	in.WriteString(stdin)
	if c != nil {
		args = append([]string{"--kubeconfig", c.Kubeconfig}, args...)
	}
	root := plugin.NewRootCommand("kubectl-meshcert", streams)
	root.SetArgs(args)
	code := plugin.Execute(context.Background(), root)
	return result{code: code, stdout: out.String(), stderr: errOut.String()}
}

func runJSON(t testing.TB, c *localcluster.Cluster, into any, args ...string) {
	t.Helper()
	r := run(t, c, "", append(args, "-o", "json")...)
	require.Equal(t, 0, r.code, "stderr: %s", r.stderr)
	require.NoError(t, json.Unmarshal([]byte(r.stdout), into), r.stdout)
}

func namespace(t testing.TB, c *localcluster.Cluster, labels map[string]string) string {
	t.Helper()
	name := localclustertest.UniqueName("plugin")
	_, err := c.Client.CoreV1().Namespaces().Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}, metav1.CreateOptions{})
	require.NoError(t, err)
	return name
}

func serviceAccount(t testing.TB, c *localcluster.Cluster, ns, name string) *corev1.ServiceAccount {
	t.Helper()
	sa, err := c.Client.CoreV1().ServiceAccounts(ns).Create(context.Background(), &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	require.NoError(t, err)
	return sa
}

// meshCA runs a CA in-process in its own namespace, as install would run it
// in the cluster, with the file-mount controller on.
func meshCA(t testing.TB, c *localcluster.Cluster) (*ca.Server, string) {
	t.Helper()
	ns := namespace(t, c, nil)
	cfg := ca.DefaultConfig()
	cfg.Namespace, cfg.Listen, cfg.MonitoringListen = ns, "127.0.0.1:0", "127.0.0.1:0"
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg.FileMount = true
	// Long enough to see root rotation wait for the kubelets, short enough
	// not to slow the tests.
	cfg.FileMountOptions.Propagation = 3 * time.Second
	srv, err := ca.Start(context.Background(), cfg, c.Config)
	require.NoError(t, err)
	t.Cleanup(srv.Stop)
	require.NoError(t, wait.PollUntilContextTimeout(context.Background(), 100*time.Millisecond, 20*time.Second, true, func(context.Context) (bool, error) {
		return srv.IsLeader(), nil
	}))
	return srv, ns
}

func waitConfigMap(t testing.TB, c *localcluster.Cluster, ns string) {
	t.Helper()
	require.NoError(t, wait.PollUntilContextTimeout(context.Background(), 50*time.Millisecond, 10*time.Second, true, func(ctx context.Context) (bool, error) {
		_, err := c.Client.CoreV1().ConfigMaps(ns).Get(ctx, ca.RootConfigMapName, metav1.GetOptions{})
		return err == nil, nil
	}))
}

func waitSecret(t testing.TB, c *localcluster.Cluster, ns, name string) *corev1.Secret {
	t.Helper()
	var s *corev1.Secret
	require.NoError(t, wait.PollUntilContextTimeout(context.Background(), 50*time.Millisecond, 10*time.Second, true, func(ctx context.Context) (bool, error) {
		var err error
		s, err = c.Client.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{})
		return err == nil, nil
	}))
	return s
}

type checkResult struct {
	TrustworthyJWT  bool   `json:"trustworthyJWT"`
	RecommendedPath string `json:"recommendedPath"`
	Checks          []struct {
		Name, Status, Message, Fix string
	} `json:"checks"`
}

func TestCheckRecommendsAPath(t *testing.T) {
	tests := map[string]struct {
		profile     localcluster.Profile
		trustworthy bool
		path        string
		// unusable are the checks that warn, or fail with --require sds.
		unusable []string
	}{
		"bound recommends sds":         {profile: localcluster.ProfileBound, trustworthy: true, path: "sds"},
		"legacy recommends file-mount": {profile: localcluster.ProfileLegacy, path: "file-mount", unusable: []string{"token-request-api", "token-request"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c := clusterFor(t, tc.profile)
			ns := namespace(t, c, nil)
			statusesOf := func(r checkResult) map[string]string {
				statuses := map[string]string{}
				for _, ch := range r.Checks {
					statuses[ch.Name] = ch.Status
					if ch.Status != "PASS" && slices.Contains(tc.unusable, ch.Name) {
						require.Contains(t, ch.Fix, "--service-account-issuer")
						require.Contains(t, ch.Fix, "--api-audiences")
					}
				}
				return statuses
			}
			var r checkResult
			runJSON(t, c, &r, "check", "--pre", "-n", ns)
			require.Equal(t, tc.trustworthy, r.TrustworthyJWT)
			require.Equal(t, tc.path, r.RecommendedPath)
			statuses := statusesOf(r)
			for _, name := range []string{"server-version", "install-permissions", "token-request-api", "token-request", "issuer-discovery"} {
				require.Contains(t, statuses, name)
			}
			require.Equal(t, "PASS", statuses["install-permissions"])
			for _, f := range tc.unusable {
				require.Equal(t, "WARN", statuses[f], f)
			}
			if tc.trustworthy {
				require.Equal(t, "PASS", statuses["token-review"])
				require.Equal(t, "PASS", statuses["token-claims"])
			}
			sas, err := c.Client.CoreV1().ServiceAccounts(ns).List(t.Context(), metav1.ListOptions{})
			require.NoError(t, err)
			for _, sa := range sas.Items {
				require.False(t, strings.HasPrefix(sa.Name, "meshcert-check-"), "check must remove its probe ServiceAccount")
			}

			text := run(t, c, "", "check", "--pre", "-n", ns)
			require.Equal(t, 0, text.code, text.stderr)
			require.Contains(t, text.stdout, "Recommended path: "+tc.path)

			required := run(t, c, "", "check", "--pre", "-n", ns, "--require", "sds", "-o", "json")
			if tc.trustworthy {
				require.Equal(t, 0, required.code)
				return
			}
			require.Equal(t, 2, required.code)
			require.Contains(t, required.stderr, "error: SDS is not possible on this cluster")
			require.NoError(t, json.Unmarshal([]byte(required.stdout), &r))
			statuses = statusesOf(r)
			for _, f := range tc.unusable {
				require.Equal(t, "FAIL", statuses[f], f)
			}
		})
	}
}

// syncBuffer is a bytes.Buffer that a command may write while the test
// reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestCheckGatesOnTheInstalledMesh runs check on a cluster of its own, so
// that no other test's workloads or CA are in its way.
func TestCheckGatesOnTheInstalledMesh(t *testing.T) {
	c, err := localcluster.Start(t.Context(), localcluster.Options{Profile: localcluster.ProfileBound})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Stop() })
	caNS := localclustertest.UniqueName("gate")

	missing := run(t, c, "", "check", "--ca-namespace", caNS)
	require.Equal(t, 2, missing.code, missing.stdout)
	require.Contains(t, missing.stdout, "✖ ca-installed: no mesh CA in namespace "+caNS)
	require.Contains(t, missing.stdout, "fix: kubectl meshcert install")
	require.Contains(t, missing.stderr, "error: 1 check(s) failed: ca-installed")

	// check --wait runs until the CA has been started and has published
	// its root everywhere.
	stdout, stderr := &syncBuffer{}, &syncBuffer{}
	done := make(chan int, 1)
	go func() {
		root := plugin.NewRootCommand("kubectl-meshcert", genericiooptions.IOStreams{In: strings.NewReader(""), Out: stdout, ErrOut: stderr})
		root.SetArgs([]string{"--kubeconfig", c.Kubeconfig, "check", "--ca-namespace", caNS, "--wait", "2m"})
		done <- plugin.Execute(context.Background(), root)
	}()
	require.EventuallyWithT(t, func(t *assert.CollectT) {
		assert.Contains(t, stderr.String(), "waiting: 1 check(s) failing: ca-installed")
	}, time.Minute, 50*time.Millisecond)
	_, err = c.Client.CoreV1().Namespaces().Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: caNS}}, metav1.CreateOptions{})
	require.NoError(t, err)
	cfg := ca.DefaultConfig()
	cfg.Namespace, cfg.Listen, cfg.MonitoringListen = caNS, "127.0.0.1:0", "127.0.0.1:0"
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	srv, err := ca.Start(context.Background(), cfg, c.Config)
	require.NoError(t, err)
	t.Cleanup(srv.Stop)
	select {
	case code := <-done:
		require.Equal(t, 0, code, "stdout: %s\nstderr: %s", stdout, stderr)
	case <-time.After(2 * time.Minute):
		t.Fatal("check --wait did not return")
	}
	for _, passed := range []string{"✔ ca-installed", "✔ ca-leader", "✔ root-configmaps: all", "✔ root-rotation", "✔ root-expiry", "✔ workloads: 0 workload"} {
		require.Contains(t, stdout.String(), passed)
	}
	require.Contains(t, stdout.String(), "‼ ca-deployment: no deployment/meshcert-ca")
	require.Contains(t, stdout.String(), "Status check results are ‼")

	// A workload whose certificate has expired fails the gate.
	pod := localclustertest.Pod(t, c, metav1.NamespaceDefault, "expired", "default", "")
	served, err := fleet.ServedPatch(fleet.SDSReport{SPIFFEID: "spiffe://cluster.local/ns/default/sa/default", Serial: "0a",
		NotBefore: time.Now().Add(-2 * time.Hour), NotAfter: time.Now().Add(-time.Hour), RotationDue: time.Now().Add(-90 * time.Minute)})
	require.NoError(t, err)
	_, err = c.Client.CoreV1().Pods(pod.Namespace).Patch(t.Context(), pod.Name, types.MergePatchType, served, metav1.PatchOptions{})
	require.NoError(t, err)
	expired := run(t, c, "", "check", "--ca-namespace", caNS, "-o", "json")
	require.Equal(t, 2, expired.code, expired.stdout)
	var r checkResult
	require.NoError(t, json.Unmarshal([]byte(expired.stdout), &r))
	require.Contains(t, r.Checks, struct{ Name, Status, Message, Fix string }{"workloads", "FAIL",
		"1 of 1 workload certificates are unusable: pod default/expired: expired 1h0m0s ago",
		"kubectl meshcert inspect -A -o wide; for one workload, kubectl meshcert inspect pod|secret NAME"})
	require.NoError(t, c.Client.CoreV1().Pods(pod.Namespace).Delete(t.Context(), pod.Name, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)}))

	// A root within the expiry warning warns, and does not fail the gate.
	soon := run(t, c, "", "check", "--ca-namespace", caNS, "--expiry-warning", "876000h")
	require.Equal(t, 0, soon.code, soon.stdout)
	require.Contains(t, soon.stdout, "‼ root-expiry: the signing root")
}

func TestIssue(t *testing.T) {
	c := clusterFor(t, localcluster.ProfileBound)
	srv, caNS := meshCA(t, c)
	ns := namespace(t, c, nil)
	serviceAccount(t, c, ns, "cart")
	waitConfigMap(t, c, ns)
	dir := t.TempDir()
	caFlags := []string{"--ca-address", srv.Addr(), "--ca-server-name", "localhost", "--ca-namespace", caNS}

	var issued struct {
		Identity string   `json:"identity"`
		Serial   string   `json:"serial"`
		Files    []string `json:"files"`
	}
	runJSON(t, c, &issued, append([]string{"issue", "cart", "-n", ns, "--out-dir", dir, "--ttl", "1h"}, caFlags...)...)
	require.Equal(t, "spiffe://cluster.local/ns/"+ns+"/sa/cart", issued.Identity)
	require.Len(t, issued.Files, 3)
	st, err := os.Stat(filepath.Join(dir, "key.pem"))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), st.Mode().Perm())

	r := run(t, nil, "", "inspect", "file", filepath.Join(dir, "cert-chain.pem"), "--roots", filepath.Join(dir, "root-cert.pem"), "-o", "json")
	require.Equal(t, 0, r.code, r.stderr)
	var files struct {
		Items []struct {
			SPIFFEID string `json:"spiffeID"`
			Verified bool   `json:"verified"`
			Serial   string `json:"serial"`
		} `json:"items"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &files))
	require.Len(t, files.Items, 1, "one file is a list of one")
	one := files.Items[0]
	require.Equal(t, issued.Identity, one.SPIFFEID)
	require.True(t, one.Verified, "issue produces a working chain")
	require.Equal(t, issued.Serial, one.Serial)

	text := run(t, nil, "", "inspect", "file", filepath.Join(dir, "cert-chain.pem"), "--roots", filepath.Join(dir, "root-cert.pem"), "--text")
	require.Equal(t, 0, text.code, text.stderr)
	require.Contains(t, text.stdout, "Certificate 1 of ")
	require.Contains(t, text.stdout, "Subject alt names:    URI:"+issued.Identity)
	require.Contains(t, text.stdout, "Extended key usage:   TLS Web Server Authentication, TLS Web Client Authentication")
	require.Contains(t, text.stdout, "Verification: OK: the chain reaches trusted root")
	otherRoot := filepath.Join(t.TempDir(), "other-root.pem")
	require.NoError(t, os.WriteFile(otherRoot, pki.EncodeCertificates(pkitest.NewRoot(t).Chain()...), 0o644))
	wrong := run(t, nil, "", "inspect", "file", filepath.Join(dir, "cert-chain.pem"), "--roots", otherRoot, "--text")
	require.Equal(t, 0, wrong.code, wrong.stderr)
	require.Contains(t, wrong.stdout, "Verification: FAILED: the chain does not lead to any root in the bundle")

	again := run(t, c, "", append([]string{"issue", "cart", "-n", ns, "--out-dir", dir}, caFlags...)...)
	require.Equal(t, 1, again.code)
	require.Contains(t, again.stderr, "already exists: pass --force")

	forced := run(t, c, "", append([]string{"issue", "cart", "-n", ns, "--out-dir", dir, "--force"}, caFlags...)...)
	require.Equal(t, 0, forced.code, forced.stderr)

	secret := run(t, c, "", append([]string{"issue", "cart", "-n", ns, "--secret", "cart-cert"}, caFlags...)...)
	require.Equal(t, 0, secret.code, secret.stderr)
	var inspected struct {
		SPIFFEID string `json:"spiffeID"`
		Verified bool   `json:"verified"`
	}
	runJSON(t, c, &inspected, "inspect", "secret", "cart-cert", "-n", ns)
	require.Equal(t, issued.Identity, inspected.SPIFFEID)
	require.True(t, inspected.Verified)

	// The user's namespace holds a published copy of the bundle, but only
	// the CA's own namespace is trusted: anyone who edits ConfigMaps in the
	// user's namespace could replace that copy.
	elsewhere := run(t, c, "", "issue", "cart", "-n", ns, "--out-dir", t.TempDir(), "--ca-address", srv.Addr(), "--ca-server-name", "localhost",
		"--ca-namespace", "no-mesh-ca-here")
	require.Equal(t, 1, elsewhere.code)
	require.Contains(t, elsewhere.stderr, "no root bundle: ConfigMap")
	require.Contains(t, elsewhere.stderr, "pass --ca-namespace")

	legacy := clusterFor(t, localcluster.ProfileLegacy)
	legacyNS := namespace(t, legacy, nil)
	serviceAccount(t, legacy, legacyNS, "cart")
	refused := run(t, legacy, "", "issue", "cart", "-n", legacyNS, "--out-dir", t.TempDir(), "--ca-address", "127.0.0.1:1")
	require.Equal(t, 1, refused.code)
	require.Contains(t, refused.stderr, "TokenRequest answered 404")
	require.Contains(t, refused.stderr, "Secret meshcert.cart")
}

func TestInspectBothPathsAndFleet(t *testing.T) {
	c := clusterFor(t, localcluster.ProfileLegacy)
	_, caNS := meshCA(t, c)
	ns := namespace(t, c, map[string]string{filemount.LabelNamespaceOptIn: filemount.OptInValue})
	serviceAccount(t, c, ns, "web")
	waitSecret(t, c, ns, "meshcert.web")

	spec := corev1.PodSpec{ServiceAccountName: "web", Containers: []corev1.Container{{Name: "app", Image: "example.invalid/app"}}}
	filemount.MountSecret(&spec)
	_, err := c.Client.CoreV1().Pods(ns).Create(t.Context(), &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web-0"}, Spec: spec}, metav1.CreateOptions{})
	require.NoError(t, err)

	var pod struct {
		Workload struct {
			SPIFFEID            string `json:"spiffeID"`
			Path                string `json:"path"`
			ChainsToCurrentRoot bool   `json:"chainsToCurrentRoot"`
		} `json:"workload"`
	}
	runJSON(t, c, &pod, "inspect", "pod", "web-0", "-n", ns, "--ca-namespace", caNS)
	require.Equal(t, "file-mount", pod.Workload.Path)
	require.Equal(t, "spiffe://cluster.local/ns/"+ns+"/sa/web", pod.Workload.SPIFFEID)
	require.True(t, pod.Workload.ChainsToCurrentRoot)

	// Recent Events: the pod's own, and for its Secret the CA's about the
	// service account it issues for.
	_, err = c.Client.CoreV1().Events(ns).Create(t.Context(), &corev1.Event{ObjectMeta: metav1.ObjectMeta{Name: "web-0.mount"},
		InvolvedObject: corev1.ObjectReference{Kind: "Pod", Name: "web-0", Namespace: ns}, Type: corev1.EventTypeWarning,
		Reason: "FailedMount", Message: "MountVolume.SetUp failed for volume \"meshcert-certs\"", LastTimestamp: metav1.Now()}, metav1.CreateOptions{})
	require.NoError(t, err)
	podText := run(t, c, "", "inspect", "pod", "web-0", "-n", ns, "--ca-namespace", caNS)
	require.Equal(t, 0, podText.code, podText.stderr)
	require.Regexp(t, `Events:\n  TYPE +REASON +AGE +OBJECT +MESSAGE\n  Warning +FailedMount +\S+ +Pod/web-0 +MountVolume.SetUp failed`, podText.stdout)
	secretText := run(t, c, "", "inspect", "secret", "meshcert.web", "-n", ns, "--ca-namespace", caNS)
	require.Equal(t, 0, secretText.code, secretText.stderr)
	require.Regexp(t, `Normal +CertificateIssued +\S+ +ServiceAccount/web +wrote key/cert Secret meshcert.web`, secretText.stdout)
	chainText := run(t, c, "", "inspect", "secret", "meshcert.web", "-n", ns, "--ca-namespace", caNS, "--text")
	require.Equal(t, 0, chainText.code, chainText.stderr)
	require.Contains(t, chainText.stdout, "Certificate 1 of 1: leaf")
	require.Contains(t, chainText.stdout, "Verification: OK")
	both := run(t, c, "", "inspect", "secret", "meshcert.web", "-n", ns, "--text", "-o", "json")
	require.Equal(t, 1, both.code)
	require.Contains(t, both.stderr, "--text and -o json both choose the output")

	var fleet struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Workloads  []struct {
			Kind     string `json:"kind"`
			Metadata struct {
				Name, Namespace string
			} `json:"metadata"`
			Namespace string    `json:"namespace"`
			Name      string    `json:"name"`
			NotAfter  time.Time `json:"notAfter"`
		} `json:"items"`
	}
	runJSON(t, c, &fleet, "inspect", "-A", "--ca-namespace", caNS)
	require.NotEmpty(t, fleet.Workloads)
	require.Equal(t, "meshcert.io/v1alpha1", fleet.APIVersion)
	require.Equal(t, "WorkloadList", fleet.Kind)
	require.Equal(t, "Workload", fleet.Workloads[0].Kind)
	require.Equal(t, fleet.Workloads[0].Name, fleet.Workloads[0].Metadata.Name)
	require.Equal(t, fleet.Workloads[0].Namespace, fleet.Workloads[0].Metadata.Namespace)
	for i := 1; i < len(fleet.Workloads); i++ {
		require.False(t, fleet.Workloads[i].NotAfter.Before(fleet.Workloads[i-1].NotAfter), "sorted by expiry")
	}

	table := run(t, c, "", "inspect", "-n", ns, "-o", "wide", "--ca-namespace", caNS)
	require.Equal(t, 0, table.code, table.stderr)
	require.Contains(t, table.stdout, "IDENTITY")
	require.Contains(t, table.stdout, "TRUSTED ROOTS")
	require.Contains(t, table.stdout, "secret/meshcert.web")

	expiring := run(t, c, "", "inspect", "-n", ns, "--expiring-within", "48h", "--ca-namespace", caNS)
	require.Equal(t, 3, expiring.code, "24h certificates expire within 48h")
	require.Contains(t, expiring.stderr, "expire within 48h0m0s")
	none := run(t, c, "", "inspect", "-n", ns, "--expiring-within", "1h", "--ca-namespace", caNS)
	require.Equal(t, 0, none.code, none.stderr)

	// Selection happens on the API server; -o name lists what was selected.
	for name, tc := range map[string]struct {
		args []string
		want string
	}{
		"every workload":                 {want: "workload.meshcert.io/meshcert.default\nworkload.meshcert.io/meshcert.web\n"},
		"a label they have":              {args: []string{"-l", filemount.LabelManagedBy + "=" + filemount.ManagedByValue}, want: "workload.meshcert.io/meshcert.default\nworkload.meshcert.io/meshcert.web\n"},
		"a label it lacks":               {args: []string{"-l", "app=nothing"}},
		"its name":                       {args: []string{"--field-selector", "metadata.name=meshcert.web"}, want: "workload.meshcert.io/meshcert.web\n"},
		"another name":                   {args: []string{"--field-selector", "metadata.name!=meshcert.web"}, want: "workload.meshcert.io/meshcert.default\n"},
		"a node: Secrets have none":      {args: []string{"--field-selector", "spec.nodeName=worker-1"}},
		"custom columns without headers": {args: []string{"-o", "custom-columns=NAME:.metadata.name,PATH:.path", "--no-headers"}, want: "meshcert.default   file-mount\nmeshcert.web       file-mount\n"},
	} {
		t.Run(name, func(t *testing.T) {
			args := append([]string{"inspect", "-n", ns, "--ca-namespace", caNS, "--sort-by", ".metadata.name"}, tc.args...)
			if !slices.Contains(tc.args, "-o") {
				args = append(args, "-o", "name")
			}
			r := run(t, c, "", args...)
			require.Equal(t, 0, r.code, r.stderr)
			require.Equal(t, tc.want, r.stdout)
		})
	}

	// -w prints the fleet, then each certificate that changes or appears,
	// until interrupted.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	watched, watchErr := &syncBuffer{}, &syncBuffer{}
	exited := make(chan int, 1)
	go func() {
		root := plugin.NewRootCommand("kubectl-meshcert", genericiooptions.IOStreams{In: strings.NewReader(""), Out: watched, ErrOut: watchErr})
		root.SetArgs([]string{"--kubeconfig", c.Kubeconfig, "inspect", "-n", ns, "-w", "-o", "name", "--ca-namespace", caNS})
		exited <- plugin.Execute(ctx, root)
	}()
	require.EventuallyWithT(t, func(t *assert.CollectT) {
		assert.Contains(t, watched.String(), "workload.meshcert.io/meshcert.web\n")
	}, 30*time.Second, 50*time.Millisecond, "-w lists what there is")
	serviceAccount(t, c, ns, "api")
	require.EventuallyWithT(t, func(t *assert.CollectT) {
		assert.Contains(t, watched.String(), "workload.meshcert.io/meshcert.api\n")
	}, 30*time.Second, 50*time.Millisecond, "-w prints the Secret the CA writes for a new service account")
	cancel()
	require.Equal(t, plugin.ExitInterrupted, <-exited, watchErr.String())

	page := run(t, c, "", "inspect", "-n", ns, "-o", "html", "--ca-namespace", caNS)
	require.Equal(t, 0, page.code, page.stderr)
	require.Contains(t, page.stdout, `<svg class="group" data-namespace="`+ns+`" data-path="file-mount"`)
	require.Contains(t, page.stdout, `data-workload="`+ns+`/Secret/meshcert.web"`)
	require.Contains(t, page.stdout, `Rotation phase: <b data-phase="none">`)

	var caStatus struct {
		Phase  string `json:"phase"`
		Source string `json:"source"`
		Bundle []any  `json:"bundle"`
	}
	runJSON(t, c, &caStatus, "inspect", "ca", "--ca-namespace", caNS)
	require.Equal(t, "none", caStatus.Phase)
	require.Equal(t, "self-signed", caStatus.Source)
	require.Len(t, caStatus.Bundle, 1)

	// Shell completion lists what the cluster holds.
	for name, tc := range map[string]struct {
		args []string
		want string
	}{
		"pods":                       {args: []string{"inspect", "pod", "-n", ns, "we"}, want: "web-0"},
		"file-mount Secrets":         {args: []string{"rotate", "secret", "-n", ns, ""}, want: "meshcert.web"},
		"namespaces of -n":           {args: []string{"inspect", "-n", ns[:4]}, want: ns},
		"namespaces to opt in":       {args: []string{"file-mount", "enable", ns[:4]}, want: ns},
		"service accounts to issue":  {args: []string{"issue", "-n", ns, "w"}, want: "web"},
		"contexts of the kubeconfig": {args: []string{"inspect", "--context", ""}, want: "meshcert-local"},
	} {
		completed := run(t, c, "", append([]string{"__complete"}, tc.args...)...)
		require.Equal(t, 0, completed.code, "%s: %s", name, completed.stderr)
		require.Contains(t, strings.Split(completed.stdout, "\n"), tc.want, "%s: %s", name, completed.stdout)
		require.Contains(t, completed.stdout, ":4\n", "%s: no file names", name)
	}

	bundle := run(t, c, "", "inspect", "ca", "-o", "pem", "--ca-namespace", caNS)
	require.Equal(t, 0, bundle.code, bundle.stderr)
	roots, err := pki.DecodeCertificates([]byte(bundle.stdout))
	require.NoError(t, err)
	published, err := c.Client.CoreV1().ConfigMaps(caNS).Get(t.Context(), ca.RootConfigMapName, metav1.GetOptions{})
	require.NoError(t, err)
	want, err := pki.DecodeCertificates([]byte(published.Data[mesh.FileRootCert]))
	require.NoError(t, err)
	require.Len(t, roots, 1)
	require.True(t, roots[0].Equal(want[0]), "inspect ca -o pem prints the root the CA publishes")
	require.Equal(t, pki.Fingerprint(roots[0]), caStatus.Bundle[0].(map[string]any)["sha256Fingerprint"])
}

func TestInspectToken(t *testing.T) {
	c := clusterFor(t, localcluster.ProfileLegacy)
	ns := namespace(t, c, nil)
	serviceAccount(t, c, ns, "old")
	_, err := c.Client.CoreV1().Secrets(ns).Create(t.Context(), &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "old-token", Annotations: map[string]string{corev1.ServiceAccountNameKey: "old"}},
		Type:       corev1.SecretTypeServiceAccountToken,
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	s := waitSecret(t, c, ns, "old-token")
	require.NoError(t, wait.PollUntilContextTimeout(t.Context(), 50*time.Millisecond, 10*time.Second, true, func(ctx context.Context) (bool, error) {
		s, err = c.Client.CoreV1().Secrets(ns).Get(ctx, "old-token", metav1.GetOptions{})
		return err == nil && len(s.Data["token"]) > 0, nil
	}))

	r := run(t, nil, string(s.Data["token"]), "inspect", "token", "-")
	require.Equal(t, 0, r.code, r.stderr)
	require.Contains(t, r.stdout, "Trustworthy:     false")
	require.Contains(t, r.stdout, "MissingAudience")
	require.Contains(t, r.stdout, "file-mount path")

	var report struct {
		Assessment struct {
			Trustworthy bool `json:"trustworthy"`
			Findings    []struct {
				Code string `json:"code"`
			} `json:"findings"`
		} `json:"assessment"`
	}
	out := run(t, nil, string(s.Data["token"]), "inspect", "token", "-o", "json")
	require.NoError(t, json.Unmarshal([]byte(out.stdout), &report))
	require.False(t, report.Assessment.Trustworthy)
	require.NotEmpty(t, report.Assessment.Findings)
}

func TestBadInput(t *testing.T) {
	c := clusterFor(t, localcluster.ProfileBound)
	ns := namespace(t, c, nil)
	_, err := c.Client.CoreV1().Secrets(ns).Create(t.Context(), &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "not-a-cert"}, Data: map[string][]byte{"password": []byte("x")},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	truncated := filepath.Join(t.TempDir(), "truncated.pem")
	require.NoError(t, os.WriteFile(truncated, []byte("-----BEGIN CERTIFICATE-----\nMIIB"), 0o644))
	unreachable := filepath.Join(t.TempDir(), "kubeconfig")
	require.NoError(t, os.WriteFile(unreachable, []byte(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]
contexts: [{name: c, context: {cluster: c}}]
current-context: c
`), 0o600))

	tests := map[string]struct {
		cluster *localcluster.Cluster
		args    []string
		want    string
	}{
		"unknown Secret":     {cluster: c, args: []string{"inspect", "secret", "nope", "-n", ns}, want: `secret ` + ns + `/nope not found`},
		"Secret not a cert":  {cluster: c, args: []string{"inspect", "secret", "not-a-cert", "-n", ns}, want: "holds no certificate"},
		"truncated PEM":      {args: []string{"inspect", "file", truncated}, want: "truncated or corrupt"},
		"unknown namespace":  {cluster: c, args: []string{"inspect", "-n", "no-such-namespace"}, want: `namespace "no-such-namespace" not found`},
		"RBAC forbidden":     {cluster: c, args: []string{"inspect", "-A", "--as", "system:serviceaccount:" + ns + ":nobody"}, want: "forbidden by RBAC"},
		"no CA installed":    {cluster: c, args: []string{"inspect", "ca", "--ca-namespace", ns}, want: "no mesh CA found in namespace " + ns},
		"unreachable":        {args: []string{"--kubeconfig", unreachable, "inspect", "ca"}, want: "cannot reach the cluster"},
		"wrong -o value":     {cluster: c, args: []string{"inspect", "-o", "xml"}, want: `unknown output format "xml"`},
		"bad jsonpath":       {cluster: c, args: []string{"inspect", "-o", "jsonpath={.items[}"}, want: "-o jsonpath={.items[}: error parsing jsonpath"},
		"bad custom columns": {cluster: c, args: []string{"inspect", "-o", "custom-columns=NAME"}, want: `-o custom-columns: "NAME" is not HEADER:.json.path`},
		"bad sort key":       {cluster: c, args: []string{"inspect", "--sort-by", "{.items[}"}, want: `--sort-by "{.items[}"`},
		"rotate needs phase": {cluster: c, args: []string{"rotate", "root", "--ca-namespace", ns}, want: "--phase is required"},
		"rotate without CA":  {cluster: c, args: []string{"rotate", "root", "--phase", "prepare", "--ca-namespace", ns}, want: "no mesh CA found"},
		"issue without dest": {cluster: c, args: []string{"issue", "cart", "-n", ns}, want: "give exactly one of --out-dir DIR and --secret NAME"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			r := run(t, tc.cluster, "", tc.args...)
			require.Equal(t, 1, r.code, "stdout: %s", r.stdout)
			require.True(t, strings.HasPrefix(r.stderr, "error: "), r.stderr)
			require.Contains(t, r.stderr, tc.want)
		})
	}
}

func TestInstallDryRunAppliesCleanly(t *testing.T) {
	c := clusterFor(t, localcluster.ProfileBound)
	ns := localclustertest.UniqueName("meshcert-system")
	for _, mode := range []string{"sds", "file-mount"} {
		t.Run(mode, func(t *testing.T) {
			r := run(t, nil, "", "install", "--dry-run=client", "-o", "yaml", "--mode", mode, "-n", ns+"-"+strings.ReplaceAll(mode, "-", ""), "--image", "meshcert/meshcert:test")
			require.Equal(t, 0, r.code, r.stderr)
			require.Contains(t, r.stdout, "kind: Deployment")
			if mode == "sds" {
				require.Contains(t, r.stdout, "kind: DaemonSet")
			} else {
				require.NotContains(t, r.stdout, "kind: DaemonSet")
				require.Contains(t, r.stdout, "--file-mount")
			}
			docs := strings.Split(r.stdout, "\n---\n")
			manifest := filepath.Join(t.TempDir(), "mesh.yaml")
			require.NoError(t, os.WriteFile(manifest, []byte(r.stdout), 0o644))
			require.Greater(t, len(docs), 6)

			// A server dry run: the API server admits every object and stores none.
			meshNS := ns + "-" + strings.ReplaceAll(mode, "-", "")
			missing := run(t, c, "", "install", "--dry-run=server", "--mode", mode, "-n", meshNS, "--image", "meshcert/meshcert:test")
			require.Equal(t, 1, missing.code, missing.stdout)
			require.Contains(t, missing.stderr, "namespace "+meshNS+" does not exist, and a server dry run stores nothing")
			_, err := c.Client.CoreV1().Namespaces().Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: meshNS}}, metav1.CreateOptions{})
			require.NoError(t, err)
			server := run(t, c, "", "install", "--dry-run=server", "--mode", mode, "-n", meshNS, "--image", "meshcert/meshcert:test")
			require.Equal(t, 0, server.code, server.stderr)
			require.Contains(t, server.stdout, "deployment/meshcert-ca applied (server dry run)")
			_, err = c.Client.AppsV1().Deployments(meshNS).Get(t.Context(), "meshcert-ca", metav1.GetOptions{})
			require.True(t, apierrors.IsNotFound(err), "a server dry run stored the Deployment: %v", err)

			applied := run(t, c, "", "install", "--mode", mode, "-n", ns+"-"+strings.ReplaceAll(mode, "-", ""), "--image", "meshcert/meshcert:test", "--wait=false")
			require.Equal(t, 0, applied.code, applied.stderr)
			require.Contains(t, applied.stdout, "deployment/meshcert-ca applied")
			again := run(t, c, "", "install", "--mode", mode, "-n", ns+"-"+strings.ReplaceAll(mode, "-", ""), "--image", "meshcert/meshcert:test", "--wait=false")
			require.Equal(t, 0, again.code, "install is idempotent: %s", again.stderr)

			removed := run(t, c, "", "uninstall", "-n", ns+"-"+strings.ReplaceAll(mode, "-", ""))
			require.Equal(t, 0, removed.code, removed.stderr)
			require.Contains(t, removed.stdout, "deployment/meshcert-ca deleted")
			_, err = c.Client.AppsV1().Deployments(ns+"-"+strings.ReplaceAll(mode, "-", "")).Get(t.Context(), "meshcert-ca", metav1.GetOptions{})
			require.True(t, apierrors.IsNotFound(err))

			// A purge withdraws every certificate: it asks for the namespace.
			unasked := run(t, c, "", "uninstall", "--purge", "-n", meshNS)
			require.Equal(t, 1, unasked.code, unasked.stdout)
			require.Contains(t, unasked.stderr, "pass -y (--yes)")
			wrong := run(t, c, "default\n", "uninstall", "--purge", "-n", meshNS)
			require.Equal(t, 1, wrong.code, wrong.stdout)
			require.Contains(t, wrong.stderr, `not confirmed (typed "default"`)
			_, err = c.Client.CoreV1().Namespaces().Get(t.Context(), meshNS, metav1.GetOptions{})
			require.NoError(t, err, "a purge nobody confirmed deleted the namespace")
			purged := run(t, c, meshNS+"\n", "uninstall", "--purge", "-n", meshNS)
			require.Equal(t, 0, purged.code, purged.stderr)
			require.Contains(t, purged.stdout, "purged:")
		})
	}
}

func TestCompletionAndVersion(t *testing.T) {
	r := run(t, nil, "", "completion", "kubectl")
	require.Equal(t, 0, r.code)
	require.Contains(t, r.stdout, "kubectl meshcert __complete")
	bash := run(t, nil, "", "completion", "bash")
	require.Equal(t, 0, bash.code)
	require.Contains(t, bash.stdout, "__start_meshcert")

	complete := run(t, nil, "", "__complete", "rot")
	require.Equal(t, 0, complete.code)
	require.Contains(t, complete.stdout, "rotate")

	c := clusterFor(t, localcluster.ProfileBound)
	var v struct {
		Client struct {
			Version string `json:"version"`
		} `json:"clientVersion"`
		Server string `json:"serverVersion"`
	}
	runJSON(t, c, &v, "version")
	require.NotEmpty(t, v.Client.Version)
	require.True(t, strings.HasPrefix(v.Server, "v1."), v.Server)
}

// monitoringCRD is a minimal CustomResourceDefinition of one of the
// Prometheus operator's kinds: enough for the API server to store them.
func monitoringCRD(kind, plural string) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
		"metadata": map[string]any{"name": plural + ".monitoring.coreos.com"},
		"spec": map[string]any{
			"group": "monitoring.coreos.com", "scope": "Namespaced",
			"names": map[string]any{"kind": kind, "listKind": kind + "List", "plural": plural, "singular": strings.ToLower(kind)},
			"versions": []any{map[string]any{"name": "v1", "served": true, "storage": true,
				"schema": map[string]any{"openAPIV3Schema": map[string]any{"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}},
		},
	}}
}

func TestInstallMonitoring(t *testing.T) {
	c := clusterFor(t, localcluster.ProfileBound)
	caNS := localclustertest.UniqueName("monitored")
	install := []string{"install", "--monitoring", "--mode", "sds", "-n", caNS, "--image", "meshcert/meshcert:test", "--wait=false"}

	without := run(t, c, "", install...)
	require.Equal(t, 0, without.code, without.stderr)
	require.Contains(t, without.stderr, "monitoring: the cluster does not serve ServiceMonitor, PrometheusRule, PodMonitor (monitoring.coreos.com/v1): left out")
	require.Contains(t, without.stderr, "core/monitoring/rules/meshcert.rules.yaml")
	require.NotContains(t, without.stdout, "servicemonitor/")

	dyn, err := dynamic.NewForConfig(c.Config)
	require.NoError(t, err)
	crds := schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
	for kind, plural := range map[string]string{"ServiceMonitor": "servicemonitors", "PodMonitor": "podmonitors", "PrometheusRule": "prometheusrules"} {
		_, err := dyn.Resource(crds).Create(t.Context(), monitoringCRD(kind, plural), metav1.CreateOptions{})
		if !apierrors.IsAlreadyExists(err) {
			require.NoError(t, err)
		}
	}
	rulesResource := schema.GroupVersionResource{Group: "monitoring.coreos.com", Version: "v1", Resource: "prometheusrules"}
	require.EventuallyWithT(t, func(t *assert.CollectT) {
		_, err := dyn.Resource(rulesResource).Namespace(caNS).List(context.Background(), metav1.ListOptions{})
		assert.NoError(t, err)
	}, 30*time.Second, 100*time.Millisecond, "the CRDs are established")

	with := run(t, c, "", install...)
	require.Equal(t, 0, with.code, with.stderr)
	for _, applied := range []string{"servicemonitor/meshcert-ca applied", "podmonitor/meshcert-agent applied", "prometheusrule/meshcert applied"} {
		require.Contains(t, with.stdout, applied)
	}
	stored, err := dyn.Resource(rulesResource).Namespace(caNS).Get(t.Context(), "meshcert", metav1.GetOptions{})
	require.NoError(t, err)
	groups, _, err := unstructured.NestedSlice(stored.Object, "spec", "groups")
	require.NoError(t, err)
	require.Len(t, groups, 1)
	require.Len(t, groups[0].(map[string]any)["rules"], len(rules.Group(rules.DefaultThresholds()).Rules))

	removed := run(t, c, "", "uninstall", "-n", caNS)
	require.Equal(t, 0, removed.code, removed.stderr)
	require.Contains(t, removed.stdout, "prometheusrule/meshcert deleted")
	require.Contains(t, removed.stdout, "servicemonitor/meshcert-ca deleted")
}

// TestInstallFailsFast plays the controllers and the kubelet that the
// local control plane lacks: install reports a stuck pod's reason and
// events as soon as they appear, fails at once on what waiting cannot
// mend, and finishes once the Deployment is available.
func TestInstallFailsFast(t *testing.T) {
	c := clusterFor(t, localcluster.ProfileBound)
	tests := map[string]struct {
		happen   func(t *testing.T, d *appsv1.Deployment)
		code     int
		stdout   []string
		errorOut string
	}{
		"an image that cannot be pulled": {
			happen: func(t *testing.T, d *appsv1.Deployment) {
				pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "meshcert-ca-1", Namespace: d.Namespace, Labels: d.Spec.Selector.MatchLabels},
					Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "ca", Image: "meshcert/meshcert:nope"}}}}
				created, err := c.Client.CoreV1().Pods(d.Namespace).Create(t.Context(), pod, metav1.CreateOptions{})
				require.NoError(t, err)
				_, err = c.Client.CoreV1().Events(d.Namespace).Create(t.Context(), &corev1.Event{
					ObjectMeta:     metav1.ObjectMeta{Name: "meshcert-ca-1.pull", Namespace: d.Namespace},
					InvolvedObject: corev1.ObjectReference{Kind: "Pod", Name: created.Name, Namespace: d.Namespace, UID: created.UID},
					Type:           corev1.EventTypeWarning, Reason: "Failed", Message: `Failed to pull image "meshcert/meshcert:nope": not found`,
				}, metav1.CreateOptions{})
				require.NoError(t, err)
				created.Status = corev1.PodStatus{Phase: corev1.PodPending, ContainerStatuses: []corev1.ContainerStatus{{Name: "ca",
					State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ImagePullBackOff", Message: `Back-off pulling image "meshcert/meshcert:nope"`}}}}}
				_, err = c.Client.CoreV1().Pods(d.Namespace).UpdateStatus(t.Context(), created, metav1.UpdateOptions{})
				require.NoError(t, err)
			},
			code:     1,
			stdout:   []string{`  pod meshcert-ca-1: ImagePullBackOff (Back-off pulling image "meshcert/meshcert:nope")`, `    event Failed: Failed to pull image "meshcert/meshcert:nope": not found`},
			errorOut: "cannot start: ImagePullBackOff",
		},
		"a progress deadline exceeded": {
			happen: func(t *testing.T, d *appsv1.Deployment) {
				d.Status = appsv1.DeploymentStatus{ObservedGeneration: d.Generation, Replicas: 1, UnavailableReplicas: 1, Conditions: []appsv1.DeploymentCondition{
					{Type: appsv1.DeploymentProgressing, Status: corev1.ConditionFalse, Reason: "ProgressDeadlineExceeded", Message: `ReplicaSet "meshcert-ca-1" has timed out progressing.`},
				}}
				_, err := c.Client.AppsV1().Deployments(d.Namespace).UpdateStatus(t.Context(), d, metav1.UpdateOptions{})
				require.NoError(t, err)
			},
			code:     1,
			errorOut: "deployment/meshcert-ca failed: Progress deadline exceeded",
		},
		"an available Deployment": {
			happen: func(t *testing.T, d *appsv1.Deployment) {
				want := *d.Spec.Replicas
				d.Status = appsv1.DeploymentStatus{ObservedGeneration: d.Generation, Replicas: want, UpdatedReplicas: want, ReadyReplicas: want, AvailableReplicas: want,
					Conditions: []appsv1.DeploymentCondition{
						{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionTrue, Reason: "MinimumReplicasAvailable"},
						{Type: appsv1.DeploymentProgressing, Status: corev1.ConditionTrue, Reason: "NewReplicaSetAvailable"},
					}}
				_, err := c.Client.AppsV1().Deployments(d.Namespace).UpdateStatus(t.Context(), d, metav1.UpdateOptions{})
				require.NoError(t, err)
			},
			stdout: []string{"deployment/meshcert-ca: Deployment is available. Replicas: 2", "meshcert is installed in"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			caNS := localclustertest.UniqueName("rollout")
			stdout, stderr := &syncBuffer{}, &syncBuffer{}
			done := make(chan int, 1)
			go func() {
				root := plugin.NewRootCommand("kubectl-meshcert", genericiooptions.IOStreams{In: strings.NewReader(""), Out: stdout, ErrOut: stderr})
				root.SetArgs([]string{"--kubeconfig", c.Kubeconfig, "install", "--mode", "file-mount", "-n", caNS, "--image", "meshcert/meshcert:nope", "--timeout", "5m"})
				done <- plugin.Execute(context.Background(), root)
			}()
			var d *appsv1.Deployment
			require.EventuallyWithT(t, func(t *assert.CollectT) {
				var err error
				d, err = c.Client.AppsV1().Deployments(caNS).Get(context.Background(), mesh.CAName, metav1.GetOptions{})
				assert.NoError(t, err)
			}, time.Minute, 50*time.Millisecond, "install applies the Deployment")
			tc.happen(t, d)
			select {
			case code := <-done:
				require.Equal(t, tc.code, code, "stdout: %s\nstderr: %s", stdout, stderr)
			case <-time.After(time.Minute):
				t.Fatalf("install is still waiting; stdout: %s", stdout)
			}
			for _, line := range tc.stdout {
				require.Contains(t, stdout.String(), line)
			}
			require.Contains(t, stderr.String(), tc.errorOut)
		})
	}
}
