// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

// Package version holds the build's version and prints it.
package version

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"time"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/meshcert/kubectl-meshcert/core/mesh"
	"github.com/meshcert/kubectl-meshcert/plugin/cluster"
	"github.com/meshcert/kubectl-meshcert/plugin/command"
	"github.com/meshcert/kubectl-meshcert/plugin/output"
)

// Version is set at build time with
// -ldflags "-X github.com/meshcert/kubectl-meshcert/plugin/version.Version=v1.2.3".
// Without it, Current reads the version go install recorded.
var Version = ""

// DevelVersion is the version of a build from a working tree without
// ldflags: there is no image of it to install.
const DevelVersion = "v0.0.0-dev"

// Current is this build's version: Version when the build set it, else the
// module version `go install ...@v1.2.3` recorded in the binary, else
// DevelVersion.
func Current() string {
	info, ok := debug.ReadBuildInfo()
	return versionOf(Version, info, ok)
}

func versionOf(ldflags string, info *debug.BuildInfo, ok bool) string {
	if ldflags != "" {
		return ldflags
	}
	if ok && info.Main.Version != "" && info.Main.Version != "(devel)" {
		return info.Main.Version
	}
	return DevelVersion
}

// Info is this build. Field names are stable.
type Info struct {
	Version   string `json:"version"`
	GoVersion string `json:"goVersion"`
	Platform  string `json:"platform"`
}

// Report is what `version -o json` prints. Field names are stable.
type Report struct {
	Client Info   `json:"clientVersion"`
	Server string `json:"serverVersion,omitempty"`
	// CAImage is the image of the installed mesh CA, when one is found.
	CAImage string `json:"caImage,omitempty"`
}

// Get returns this build's Info.
func Get() Info {
	return Info{Version: Current(), GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
}

// Options are the version command's flags.
type Options struct {
	Output     output.Options
	ClientOnly bool
	genericiooptions.IOStreams

	// factory is nil where no cluster is configured (tests).
	factory *cluster.Factory
}

// NewCommand returns the version command.
func NewCommand(factory *cluster.Factory, streams genericiooptions.IOStreams) *cobra.Command {
	o := &Options{factory: factory, IOStreams: streams}
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the version of this binary",
		Example: `  # This binary, the cluster and the installed CA image
  kubectl meshcert version

  # Only this binary, as JSON
  kubectl meshcert version --client -o json`,
		Args: cobra.NoArgs,
		RunE: command.RunE(o),
	}
	o.Output.Kind = "Version"
	o.Output.AddFlags(cmd)
	cmd.Flags().BoolVar(&o.ClientOnly, "client", false, "only this binary's version; do not contact the cluster")
	return cmd
}

// Complete has nothing to fill in: version takes no arguments.
func (o *Options) Complete([]string) error { return nil }

// Validate checks the output format.
func (o *Options) Validate() error { return o.Output.Validate() }

// Run prints the version.
func (o *Options) Run(ctx context.Context) error {
	info := Report{Client: Get()}
	if !o.ClientOnly && o.factory != nil {
		o.server(ctx, &info)
	}
	return o.Output.Print(o.Out, info, nil, func(w io.Writer) error {
		_, err := fmt.Fprintf(w, "Client: %s (%s, %s)\n", info.Client.Version, info.Client.GoVersion, info.Client.Platform)
		if err == nil && info.Server != "" {
			_, err = fmt.Fprintf(w, "Server: Kubernetes %s\n", info.Server)
		}
		if err == nil && info.CAImage != "" {
			_, err = fmt.Fprintf(w, "Mesh CA: %s\n", info.CAImage)
		}
		return err
	})
}

// server fills in what the cluster says, leaving it out when the cluster
// cannot be reached: version must work without one.
func (o *Options) server(ctx context.Context, r *Report) {
	clients, err := o.factory.Clients()
	if err != nil {
		return
	}
	config := rest.CopyConfig(clients.Config)
	config.Timeout = 5 * time.Second
	client, err := kubernetes.NewForConfig(config)
	if err != nil {
		return
	}
	if v, err := client.Discovery().ServerVersion(); err == nil {
		r.Server = v.GitVersion
	}
	d, err := client.AppsV1().Deployments(mesh.DefaultNamespace).Get(ctx, mesh.CAName, metav1.GetOptions{})
	if err == nil && len(d.Spec.Template.Spec.Containers) > 0 {
		r.CAImage = d.Spec.Template.Spec.Containers[0].Image
	}
}
