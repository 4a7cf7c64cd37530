// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

// Package issue is `kubectl meshcert issue`: a workload certificate on
// demand, obtained exactly as a node agent obtains one.
package issue

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/utils/ptr"

	"github.com/meshcert/kubectl-meshcert/core/ca"
	"github.com/meshcert/kubectl-meshcert/core/caclient"
	"github.com/meshcert/kubectl-meshcert/core/filemount"
	"github.com/meshcert/kubectl-meshcert/core/identity"
	"github.com/meshcert/kubectl-meshcert/core/kubeapi"
	"github.com/meshcert/kubectl-meshcert/core/mesh"
	"github.com/meshcert/kubectl-meshcert/core/pki"
	"github.com/meshcert/kubectl-meshcert/core/token"
	"github.com/meshcert/kubectl-meshcert/plugin/cluster"
	"github.com/meshcert/kubectl-meshcert/plugin/command"
	"github.com/meshcert/kubectl-meshcert/plugin/output"
)

// Options are issue's flags and state.
type Options struct {
	Output         output.Options
	ServiceAccount string
	TTL            time.Duration
	OutDir         string
	Secret         string
	CAAddress      string
	CAServerName   string
	CANamespace    string
	Audience       string
	TrustDomain    string
	KeyAlgorithm   string
	Force          bool
	genericiooptions.IOStreams

	factory *cluster.Factory
	clients *cluster.Clients
	alg     pki.KeyAlgorithm
}

// Result is issue's JSON output. Field names are stable.
type Result struct {
	Identity string     `json:"identity"`
	Serial   string     `json:"serial"`
	NotAfter time.Time  `json:"notAfter"`
	Files    []string   `json:"files,omitempty"`
	Secret   string     `json:"secret,omitempty"`
	Report   pki.Report `json:"certificate"`
}

// NewCommand returns the issue command.
func NewCommand(factory *cluster.Factory, streams genericiooptions.IOStreams) *cobra.Command {
	o := &Options{factory: factory, IOStreams: streams, TTL: 24 * time.Hour, CANamespace: mesh.DefaultNamespace,
		Audience: token.DefaultAudience, TrustDomain: identity.DefaultTrustDomain}
	cmd := &cobra.Command{
		Use:   "issue SERVICEACCOUNT",
		Short: "Issue a workload certificate for a service account, as its node agent would",
		Long: `Issue mints a projected token for the service account with the mesh audience, makes a key and a CSR,
and sends both to the mesh CA. It writes key.pem (mode 0600), cert-chain.pem and root-cert.pem to --out-dir,
or a Secret with --secret. Without --ca-address it reaches the installed CA through a port-forward.`,
		Example: `  # Issue a certificate for service account web into ./certs
  kubectl meshcert issue web -n shop --out-dir ./certs

  # Issue one valid for an hour into a Secret, replacing it if it exists
  kubectl meshcert issue web -n shop --secret web-cert --ttl 1h --force`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: factory.CompleteNames(cluster.CompleteServiceAccounts, false),
		RunE:              command.RunE(o),
	}
	f := cmd.Flags()
	f.DurationVar(&o.TTL, "ttl", o.TTL, "certificate lifetime to ask for (the CA clamps it to its maximum)")
	f.StringVar(&o.OutDir, "out-dir", "", "write key.pem, cert-chain.pem and root-cert.pem into this directory")
	f.StringVar(&o.Secret, "secret", "", "write a Secret of this name instead, of type "+string(filemount.SecretType))
	f.StringVar(&o.CAAddress, "ca-address", "", "host:port of the CA (default: port-forward to Service meshcert-ca)")
	f.StringVar(&o.CAServerName, "ca-server-name", "", "name the CA's certificate must carry (default: meshcert-ca.<ca-namespace>.svc, or the host of --ca-address)")
	f.StringVar(&o.CANamespace, "ca-namespace", o.CANamespace, "namespace of the mesh CA")
	f.StringVar(&o.Audience, "audience", o.Audience, "the mesh audience")
	f.StringVar(&o.TrustDomain, "trust-domain", o.TrustDomain, "SPIFFE trust domain")
	f.StringVar(&o.KeyAlgorithm, "key-algorithm", string(pki.DefaultKeyAlgorithm), "ECDSA-P256, RSA-2048 or RSA-3072")
	f.BoolVar(&o.Force, "force", false, "overwrite existing files or Secret")
	o.Output.Kind = "IssuedCertificate"
	o.Output.AddFlags(cmd)
	return cmd
}

// Complete reads the argument and the key algorithm.
func (o *Options) Complete(args []string) error {
	o.ServiceAccount = args[0]
	var err error
	if o.alg, err = pki.ParseKeyAlgorithm(o.KeyAlgorithm); err != nil {
		return fmt.Errorf("--key-algorithm: %w", err)
	}
	return nil
}

// Validate checks the flags, before any API call.
func (o *Options) Validate() error {
	if (o.OutDir == "") == (o.Secret == "") {
		return errors.New("give exactly one of --out-dir DIR and --secret NAME")
	}
	if err := identity.ValidateServiceAccount(o.ServiceAccount); err != nil {
		return err
	}
	if o.TTL <= 0 {
		return fmt.Errorf("--ttl %s must be positive", o.TTL)
	}
	if o.OutDir != "" && !o.Force {
		for _, name := range mesh.CertFiles() {
			if _, err := os.Stat(filepath.Join(o.OutDir, name)); err == nil {
				return fmt.Errorf("%s already exists: pass --force to overwrite it", filepath.Join(o.OutDir, name))
			}
		}
	}
	return o.Output.Validate()
}

// Run issues the certificate.
func (o *Options) Run(ctx context.Context) error {
	var err error
	if o.clients, err = o.factory.Connect(ctx); err != nil {
		return err
	}
	ns := o.clients.Namespace
	id, err := identity.New(o.TrustDomain, ns, o.ServiceAccount)
	if err != nil {
		return err
	}
	if o.Secret != "" && !o.Force {
		if _, err := o.clients.Client.CoreV1().Secrets(ns).Get(ctx, o.Secret, metav1.GetOptions{}); err == nil {
			return fmt.Errorf("secret %s/%s already exists: pass --force to overwrite it", ns, o.Secret)
		}
	}
	tr, err := o.clients.Client.CoreV1().ServiceAccounts(ns).CreateToken(ctx, o.ServiceAccount, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{Audiences: []string{o.Audience}, ExpirationSeconds: ptr.To[int64](600)},
	}, metav1.CreateOptions{})
	switch {
	case apierrors.IsNotFound(err) && o.serviceAccountExists(ctx):
		return fmt.Errorf("this cluster cannot issue projected tokens (TokenRequest answered 404), so it cannot prove %s to the CA: use the file-mount path, Secret %s in namespace %s (run the CA with --file-mount and opt the namespace in: kubectl meshcert file-mount enable %s), and inspect it with `kubectl meshcert inspect secret %s -n %s`",
			id, filemount.SecretName(o.ServiceAccount), ns, ns, filemount.SecretName(o.ServiceAccount), ns)
	case apierrors.IsNotFound(err):
		return fmt.Errorf("ServiceAccount %s/%s not found (is -n right?)", ns, o.ServiceAccount)
	case err != nil:
		return kubeapi.Explain(err, "request a token for "+o.ServiceAccount)
	}

	roots, err := o.roots(ctx)
	if err != nil {
		return err
	}
	address, serverName := o.CAAddress, o.CAServerName
	if address == "" {
		forwardCtx, stop := context.WithCancel(ctx)
		defer stop()
		if address, err = kubeapi.ForwardToService(forwardCtx, o.clients.Config, o.clients.Client, o.CANamespace, mesh.CAName, mesh.CAPort); err != nil {
			return fmt.Errorf("%w (or pass --ca-address)", err)
		}
		if serverName == "" {
			serverName = mesh.CAServiceName(o.CANamespace)
		}
	}
	client, err := caclient.Dial(address, serverName, caclient.StaticRoots(roots))
	if err != nil {
		return err
	}
	defer client.Close()

	key, err := pki.GenerateKey(o.alg)
	if err != nil {
		return err
	}
	csr, err := pki.NewCSR(key, id.URL())
	if err != nil {
		return err
	}
	chain, err := client.CreateCertificate(ctx, tr.Status.Token, csr, o.TTL)
	if err != nil {
		return fmt.Errorf("the CA refused: %w", err)
	}
	keyPEM, err := pki.EncodePrivateKey(key)
	if err != nil {
		return err
	}
	files := map[string][]byte{
		mesh.FilePrivateKey: keyPEM,
		mesh.FileCertChain:  pki.EncodeCertificates(chain[:len(chain)-1]...),
		mesh.FileRootCert:   pki.EncodeCertificates(roots...),
	}
	report, err := pki.Describe(chain, roots, time.Now())
	if err != nil {
		return err
	}
	result := Result{Identity: id.String(), Serial: report.Serial, NotAfter: report.NotAfter, Report: report}
	if o.OutDir != "" {
		if result.Files, err = writeFiles(o.OutDir, files); err != nil {
			return err
		}
	} else {
		if err := o.writeSecret(ctx, ns, files); err != nil {
			return err
		}
		result.Secret = ns + "/" + o.Secret
	}
	return o.Output.Print(o.Out, result, nil, func(w io.Writer) error {
		where := result.Secret
		if where == "" {
			where = o.OutDir
		}
		_, err := fmt.Fprintf(w, "Issued %s\n  serial    %s\n  not after %s (%s)\n  chains to %s\n  written   %s\n",
			result.Identity, result.Serial, result.NotAfter.Format(time.RFC3339), report.Remaining, fleetRoot(report), where)
		return err
	})
}

func fleetRoot(r pki.Report) string {
	if r.VerifiedRoot == nil {
		return "no known root: " + r.VerifyError
	}
	return r.VerifiedRoot.Fingerprint
}

func (o *Options) serviceAccountExists(ctx context.Context) bool {
	_, err := o.clients.Client.CoreV1().ServiceAccounts(o.clients.Namespace).Get(ctx, o.ServiceAccount, metav1.GetOptions{})
	return err == nil
}

// roots reads the root bundle from the CA's own namespace. The copies the
// CA publishes in other namespaces can be edited by anyone who may edit
// ConfigMaps there, so they are never trusted to verify the CA.
func (o *Options) roots(ctx context.Context) ([]*x509.Certificate, error) {
	cm, err := o.clients.Client.CoreV1().ConfigMaps(o.CANamespace).Get(ctx, ca.RootConfigMapName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("no root bundle: ConfigMap %s/%s not found (is the mesh CA installed there? pass --ca-namespace, and `kubectl meshcert check` tells)", o.CANamespace, ca.RootConfigMapName)
	}
	if err != nil {
		return nil, kubeapi.Explain(err, fmt.Sprintf("read ConfigMap %s/%s", o.CANamespace, ca.RootConfigMapName))
	}
	roots, err := pki.DecodeCertificates([]byte(cm.Data[mesh.FileRootCert]))
	if err != nil {
		return nil, fmt.Errorf("ConfigMap %s/%s: %w", o.CANamespace, ca.RootConfigMapName, err)
	}
	return roots, nil
}

// writeFiles writes each file whole or not at all: into a temporary file
// first, then renamed.
func writeFiles(dir string, files map[string][]byte) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	var written []string
	for _, name := range mesh.CertFiles() {
		mode := os.FileMode(0o644)
		if name == mesh.FilePrivateKey {
			mode = 0o600
		}
		path := filepath.Join(dir, name)
		if err := writeFile(path, files[name], mode); err != nil {
			return nil, err
		}
		written = append(written, path)
	}
	return written, nil
}

// writeFile writes data to path through a temporary file in the same
// directory (created 0600, so a key is never readable by others), renamed
// into place; on any error the temporary file is removed.
func writeFile(path string, data []byte, mode os.FileMode) (err error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+"-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	if _, err = tmp.Write(data); err != nil {
		return err
	}
	if err = tmp.Chmod(mode); err != nil {
		return err
	}
	if err = tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

func (o *Options) writeSecret(ctx context.Context, ns string, files map[string][]byte) error {
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: o.Secret, Namespace: ns, Labels: map[string]string{"app.kubernetes.io/created-by": mesh.FieldManager}},
		Type:       filemount.SecretType,
		Data:       files,
	}
	secrets := o.clients.Client.CoreV1().Secrets(ns)
	_, err := secrets.Create(ctx, secret, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) && o.Force {
		existing, getErr := secrets.Get(ctx, o.Secret, metav1.GetOptions{})
		if getErr != nil {
			return getErr
		}
		existing.Type, existing.Data = secret.Type, secret.Data
		_, err = secrets.Update(ctx, existing, metav1.UpdateOptions{})
	}
	return kubeapi.Explain(err, "write Secret "+o.Secret)
}
