// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

package scenario

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/meshcert/kubectl-meshcert/core/mesh"
	"github.com/meshcert/kubectl-meshcert/harness/provider"
)

// ExpectAccess checks what a stolen token of a mesh component can do, with
// kubectl and the credentials the component runs with (on kind the token
// the kubelet projected into its pod): `kubectl auth can-i` must answer yes
// for each of Allowed and no for each of Denied ("VERB RESOURCE[/NAME]
// [-n NAMESPACE]"), and each of Refused, a kubectl command, must fail with
// its message.
type ExpectAccess struct {
	As string `yaml:"as"`
	// NodeOf, for a component with a pod per node, takes the credentials
	// of the one on the node of this workload.
	NodeOf  string        `yaml:"nodeOf"`
	Allowed []string      `yaml:"allowed"`
	Denied  []string      `yaml:"denied"`
	Refused []RefusedCall `yaml:"refused"`
}

// RefusedCall is a kubectl command the API server must refuse.
type RefusedCall struct {
	Args     []string `yaml:"args"`
	Contains string   `yaml:"contains"`
}

// Validate checks the component and that there is something to check.
func (e *ExpectAccess) Validate() error {
	if e.As != mesh.CAName && e.As != mesh.AgentName {
		return fmt.Errorf("expectAccess as %q: use %s or %s", e.As, mesh.CAName, mesh.AgentName)
	}
	if len(e.Allowed)+len(e.Denied)+len(e.Refused) == 0 {
		return errors.New("expectAccess checks nothing: give allowed, denied or refused")
	}
	for _, r := range e.Refused {
		if len(r.Args) == 0 || r.Contains == "" {
			return errors.New("expectAccess refused calls need args and the message they fail with (contains)")
		}
	}
	return nil
}

// Run checks each item until it holds: admission policies take effect a
// moment after install applied them.
func (e *ExpectAccess) Run(ctx context.Context, p provider.Provider) error {
	kubectl, err := kubectlPath()
	if err != nil {
		return err
	}
	config, err := p.ComponentConfig(ctx, e.As, e.NodeOf)
	if err != nil {
		return err
	}
	kubeconfig, err := writeKubeconfig(config)
	if err != nil {
		return err
	}
	defer os.Remove(kubeconfig)
	run := func(args ...string) (stdout, stderr string, err error) {
		var out, errOut bytes.Buffer
		cmd := exec.CommandContext(ctx, kubectl, append([]string{"--kubeconfig", kubeconfig}, args...)...)
		cmd.Stdout, cmd.Stderr = &out, &errOut
		err = cmd.Run()
		return strings.TrimSpace(out.String()), strings.TrimSpace(errOut.String()), err
	}
	canI := func(query, want string) error {
		return eventually(ctx, func() error {
			out, errOut, _ := run(append([]string{"auth", "can-i"}, strings.Fields(query)...)...)
			if out != "yes" && out != "no" {
				return fmt.Errorf("kubectl auth can-i %s as %s answered neither yes nor no: %s %s", query, e.As, out, errOut)
			}
			if out != want {
				return fmt.Errorf("kubectl auth can-i %s as %s: %q, want %q", query, e.As, out, want)
			}
			return nil
		})
	}
	for _, q := range e.Allowed {
		if err := canI(q, "yes"); err != nil {
			return err
		}
	}
	for _, q := range e.Denied {
		if err := canI(q, "no"); err != nil {
			return err
		}
	}
	for _, r := range e.Refused {
		err := eventually(ctx, func() error {
			stdout, stderr, err := run(r.Args...)
			out := stdout + " " + stderr
			if err == nil {
				return fmt.Errorf("kubectl %s as %s succeeded: %s", strings.Join(r.Args, " "), e.As, out)
			}
			if !strings.Contains(out, r.Contains) {
				return fmt.Errorf("kubectl %s as %s failed without %q: %s", strings.Join(r.Args, " "), e.As, r.Contains, out)
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// writeKubeconfig writes config, credentials and impersonation included, as
// a kubeconfig file kubectl reads.
func writeKubeconfig(config *rest.Config) (string, error) {
	kc := clientcmdapi.NewConfig()
	kc.Clusters["c"] = &clientcmdapi.Cluster{Server: config.Host, CertificateAuthority: config.CAFile,
		CertificateAuthorityData: config.CAData, InsecureSkipTLSVerify: config.Insecure, TLSServerName: config.ServerName}
	kc.AuthInfos["u"] = &clientcmdapi.AuthInfo{Token: config.BearerToken, TokenFile: config.BearerTokenFile,
		ClientCertificate: config.CertFile, ClientCertificateData: config.CertData, ClientKey: config.KeyFile, ClientKeyData: config.KeyData,
		Impersonate: config.Impersonate.UserName, ImpersonateGroups: config.Impersonate.Groups, ImpersonateUserExtra: config.Impersonate.Extra}
	kc.Contexts["c"] = &clientcmdapi.Context{Cluster: "c", AuthInfo: "u"}
	kc.CurrentContext = "c"
	f, err := os.CreateTemp("", "component-*.kubeconfig")
	if err != nil {
		return "", err
	}
	f.Close()
	if err := clientcmd.WriteToFile(*kc, f.Name()); err != nil {
		os.Remove(f.Name())
		return "", err
	}
	return f.Name(), nil
}

// kubectlPath finds kubectl: $KUBECTL, then bin/kubectl beside the running
// program or in this directory or a parent (`make kubectl` builds it), then
// $PATH.
func kubectlPath() (string, error) {
	if k := os.Getenv("KUBECTL"); k != "" {
		return k, nil
	}
	var dirs []string
	if exe, err := os.Executable(); err == nil {
		dirs = append(dirs, filepath.Dir(exe))
	}
	if wd, err := os.Getwd(); err == nil {
		for d := wd; ; d = filepath.Dir(d) {
			dirs = append(dirs, filepath.Join(d, "bin"))
			if filepath.Dir(d) == d {
				break
			}
		}
	}
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "kubectl")); err == nil {
			return filepath.Join(d, "kubectl"), nil
		}
	}
	if k, err := exec.LookPath("kubectl"); err == nil {
		return k, nil
	}
	return "", errors.New("expectAccess needs kubectl: run `make kubectl` (it builds bin/kubectl), or set KUBECTL")
}

// ExpectSocketHeld runs, in Namespace, a workload as root with the node
// agent's socket directory mounted as workloads mount it, that tries to
// unlink the socket, put a file beside it, rename one over it and listen in
// its place; every attempt must be refused.
type ExpectSocketHeld struct {
	Namespace string `yaml:"namespace"`
}

// Validate checks the namespace.
func (e *ExpectSocketHeld) Validate() error {
	if e.Namespace == "" {
		return errors.New("expectSocketHeld needs the namespace to run the hostile workload in")
	}
	return nil
}

// Run runs the hostile workload once.
func (e *ExpectSocketHeld) Run(ctx context.Context, p provider.Provider) error {
	_, err := p.TryTakeOverSocket(ctx, e.Namespace)
	return err
}
