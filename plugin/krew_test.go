// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

package plugin_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"sigs.k8s.io/yaml"
)

// repoRoot is the directory with go.mod and the control-plane module.
func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	require.NoError(t, err)
	for {
		if _, err := os.Stat(filepath.Join(dir, "harness", "controlplane", "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		require.NotEqual(t, parent, dir, "repository root not found")
		dir = parent
	}
}

func requireFile(t *testing.T, path, how string) string {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("%s is missing: run `%s` at the repository root (make test does)", path, how)
	}
	return path
}

// TestKrewManifestInstallsAndRuns validates krew.yaml with krew's own
// validator, installs the plugin from the local archive with krew into a
// temporary KREW_ROOT, and runs it through kubectl's plugin lookup.
func TestKrewManifestInstallsAndRuns(t *testing.T) {
	root := repoRoot(t)
	bin := filepath.Join(root, "bin")
	validator := requireFile(t, filepath.Join(bin, "validate-krew-manifest"), "make krew-tools")
	krew := requireFile(t, filepath.Join(bin, "krew"), "make krew-tools")
	kubectl := requireFile(t, filepath.Join(bin, "kubectl"), "make kubectl")
	platform := runtime.GOOS + "_" + runtime.GOARCH
	hostManifest := requireFile(t, filepath.Join(root, "dist", "host", "meshcert.yaml"), "make dist-host")
	archive := requireFile(t, filepath.Join(root, "dist", "host", "kubectl-meshcert_"+platform+".tar.gz"), "make dist-host")

	// The committed manifest: every platform, lowercase sha256, LICENSE.
	data, err := os.ReadFile(filepath.Join(root, "krew.yaml"))
	require.NoError(t, err)
	var manifest struct {
		APIVersion string                `json:"apiVersion"`
		Kind       string                `json:"kind"`
		Metadata   struct{ Name string } `json:"metadata"`
		Spec       struct {
			Version   string `json:"version"`
			Caveats   string `json:"caveats"`
			Platforms []struct {
				Selector struct{ MatchLabels map[string]string } `json:"selector"`
				SHA256   string                                  `json:"sha256"`
				Bin      string                                  `json:"bin"`
				Files    []struct{ From, To string }             `json:"files"`
			} `json:"platforms"`
		} `json:"spec"`
	}
	require.NoError(t, yaml.Unmarshal(data, &manifest))
	require.Equal(t, "krew.googlecontainertools.github.com/v1alpha2", manifest.APIVersion)
	require.Equal(t, "Plugin", manifest.Kind)
	require.Equal(t, "meshcert", manifest.Metadata.Name)
	seen := map[string]bool{}
	for _, p := range manifest.Spec.Platforms {
		os, arch := p.Selector.MatchLabels["os"], p.Selector.MatchLabels["arch"]
		seen[os+"/"+arch] = true
		require.Regexp(t, `^[a-f0-9]{64}$`, p.SHA256)
		// kubectl finds kubectl_complete-meshcert through PATH, and on
		// Windows through PATHEXT: a .cmd there, no shell script.
		if os == "windows" {
			require.Equal(t, "kubectl-meshcert.exe", p.Bin)
			require.Contains(t, p.Files, struct{ From, To string }{"kubectl_complete-meshcert.cmd", "."})
			require.NotContains(t, p.Files, struct{ From, To string }{"kubectl_complete-meshcert", "."})
		} else {
			require.Equal(t, "kubectl-meshcert", p.Bin)
			require.Contains(t, p.Files, struct{ From, To string }{"kubectl_complete-meshcert", "."})
		}
		require.Contains(t, p.Files, struct{ From, To string }{"LICENSE", "."})
		require.Contains(t, p.Files, struct{ From, To string }{"monitoring", "."})
	}
	require.Contains(t, manifest.Spec.Caveats, "ln -sf ~/.krew/store/meshcert/"+manifest.Spec.Version+"/kubectl_complete-meshcert ~/.krew/bin/",
		"krew does not link the completion script: the caveats say how")
	for _, want := range []string{"linux/amd64", "linux/arm64", "darwin/amd64", "darwin/arm64", "windows/amd64", "windows/arm64"} {
		require.True(t, seen[want], "krew.yaml lacks %s", want)
	}

	tmp := t.TempDir()
	for name, path := range map[string]string{"committed": filepath.Join(root, "krew.yaml"), "host": hostManifest} {
		// krew infers the plugin name from the file name.
		named := filepath.Join(tmp, name, "meshcert.yaml")
		require.NoError(t, os.MkdirAll(filepath.Dir(named), 0o755))
		content, err := os.ReadFile(path)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(named, content, 0o644))
		out, err := exec.Command(validator, "-manifest", named, "-skip-install").CombinedOutput()
		require.NoError(t, err, "krew's validation of the %s manifest failed:\n%s", name, out)
	}

	krewRoot := filepath.Join(tmp, "krew")
	env := append(os.Environ(), "KREW_ROOT="+krewRoot, "HOME="+tmp,
		"PATH="+filepath.Join(krewRoot, "bin")+string(os.PathListSeparator)+os.Getenv("PATH"))
	install := exec.Command(krew, "install", "--manifest="+hostManifest, "--archive="+archive)
	install.Env = env
	out, err := install.CombinedOutput()
	require.NoError(t, err, "krew install:\n%s", out)
	licenses, err := filepath.Glob(filepath.Join(krewRoot, "store", "meshcert", "*", "LICENSE"))
	require.NoError(t, err)
	require.Len(t, licenses, 1, "the archive must carry LICENSE")
	for _, file := range []string{"meshcert.rules.yaml", "meshcert-dashboard.json"} {
		shipped, err := filepath.Glob(filepath.Join(krewRoot, "store", "meshcert", "*", "monitoring", file))
		require.NoError(t, err)
		require.Len(t, shipped, 1, "the archive must carry the plain rules file and the dashboard: monitoring/%s", file)
	}

	version := exec.Command(kubectl, "meshcert", "version", "--client", "-o", "json")
	version.Env = env
	out, err = version.CombinedOutput()
	require.NoError(t, err, "kubectl meshcert version:\n%s", out)
	var v struct {
		Client struct{ Version string } `json:"clientVersion"`
	}
	require.NoError(t, json.Unmarshal(out, &v), string(out))
	require.True(t, strings.HasPrefix(v.Client.Version, "v"), v.Client.Version)

	help := exec.Command(kubectl, "meshcert", "--help")
	help.Env = env
	out, err = help.CombinedOutput()
	require.NoError(t, err)
	require.Contains(t, string(out), "kubectl meshcert [command]", "help reads as a kubectl plugin")
}
