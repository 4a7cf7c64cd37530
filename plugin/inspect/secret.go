// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

package inspect

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/utils/ptr"

	"github.com/meshcert/kubectl-meshcert/core/filemount"
	"github.com/meshcert/kubectl-meshcert/core/fleet"
	"github.com/meshcert/kubectl-meshcert/core/kubeapi"
	"github.com/meshcert/kubectl-meshcert/core/mesh"
	"github.com/meshcert/kubectl-meshcert/core/pki"
	"github.com/meshcert/kubectl-meshcert/plugin/cluster"
	"github.com/meshcert/kubectl-meshcert/plugin/command"
	"github.com/meshcert/kubectl-meshcert/plugin/output"
)

// SecretOptions are `inspect secret`'s flags and state.
type SecretOptions struct {
	*CommonOptions
	Output output.Options
	Name   string
	Text   bool
	genericiooptions.IOStreams
	connection
}

func newSecretCommand(factory *cluster.Factory, streams genericiooptions.IOStreams, common *CommonOptions) *cobra.Command {
	o := &SecretOptions{CommonOptions: common, IOStreams: streams, Output: output.Options{Table: true}, connection: connection{factory: factory}}
	cmd := &cobra.Command{
		Use:   "secret NAME",
		Short: "Inspect the certificate in a Secret (file-mount or kubernetes.io/tls)",
		Example: `  # The file-mount certificate of service account web, with recent Events
  kubectl meshcert inspect secret meshcert.web -n shop

  # Every certificate of its chain, with usages, and why verification fails
  kubectl meshcert inspect secret meshcert.web -n shop --text`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: factory.CompleteNames(cluster.CompleteMeshSecrets, false),
		RunE:              command.RunE(o),
	}
	o.Output.Kind = "Certificate"
	o.Output.AddFlags(cmd)
	cmd.Flags().BoolVar(&o.Text, "text", false, textFlagHelp)
	return cmd
}

// Complete takes the argument.
func (o *SecretOptions) Complete(args []string) error {
	o.Name = args[0]
	return nil
}

// Validate checks the flags, before any API call.
func (o *SecretOptions) Validate() error {
	if o.Name == "" {
		return errors.New("name the Secret to inspect")
	}
	if err := validateText(o.Text, o.Output); err != nil {
		return err
	}
	return o.Output.Validate()
}

// Run prints the Secret's certificate.
func (o *SecretOptions) Run(ctx context.Context) error {
	if err := o.connect(ctx); err != nil {
		return err
	}
	name := o.Name
	s, err := o.clients.Client.CoreV1().Secrets(o.clients.Namespace).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return fmt.Errorf("secret %s/%s not found (is -n right? file-mount Secrets are named meshcert.<service-account>)", o.clients.Namespace, name)
	}
	if err != nil {
		return kubeapi.Explain(err, "read Secret "+name)
	}
	r, err := describeSecret(s, o.now)
	if err != nil {
		return err
	}
	if root := o.currentRoot(ctx, o.CANamespace); root != nil {
		chain, _, _ := fleet.SecretCertificate(s)
		_, verifyErr := pki.Verify(chain, []*x509.Certificate{root}, o.now)
		r.ChainsToCurrentRoot = ptr.To(verifyErr == nil)
	}
	if o.Text {
		// Verified against the bundle the pods read beside the chain, which
		// is what they trust; the CA's signing root where it has none.
		chain, roots, _ := fleet.SecretCertificate(s)
		if root := o.currentRoot(ctx, o.CANamespace); root != nil && len(roots) == 0 {
			roots = []*x509.Certificate{root}
		}
		return pki.WriteChainText(o.Out, chain, roots, o.now)
	}
	objects := []objectRef{{"Secret", s.Name}}
	if sa, ok := filemount.ServiceAccountOf(s.Name); ok {
		objects = append(objects, objectRef{"ServiceAccount", sa})
	}
	r.Events = recentEvents(ctx, o.clients.Client, s.Namespace, objects...)
	if err := o.Output.Print(o.Out, r, certTable([]CertificateReport{r}), nil); err != nil || o.Output.Machine() {
		return err
	}
	return printEvents(o.Out, r.Events, o.now)
}

func describeSecret(s *corev1.Secret, now time.Time) (CertificateReport, error) {
	chain, roots, err := fleet.SecretCertificate(s)
	if err != nil {
		return CertificateReport{}, fmt.Errorf("secret %s/%s: %w", s.Namespace, s.Name, err)
	}
	report, err := pki.Describe(chain, roots, now)
	if err != nil {
		return CertificateReport{}, err
	}
	r := CertificateReport{Source: "secret/" + s.Namespace + "/" + s.Name, Report: report, Path: mesh.ModeFileMount,
		RotationDue: s.Annotations[filemount.AnnotationRenewAt]}
	for _, root := range roots {
		r.RootFingerprints = append(r.RootFingerprints, pki.Fingerprint(root))
	}
	return r, nil
}
