// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

// Package version holds the build's version and prints it.
package version

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"time"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"

	"github.com/meshcert/kubectl-meshcert/core/deploy"
	"github.com/meshcert/kubectl-meshcert/plugin/cluster"
)

// Version is set at build time with
// -ldflags "-X github.com/meshcert/kubectl-meshcert/plugin/version.Version=v1.2.3".
var Version = "v0.0.0-dev"

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
	return Info{Version: Version, GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
}

// Options are the version command's flags.
type Options struct {
	ConfigFlags *genericclioptions.ConfigFlags
	Output      string
	ClientOnly  bool
	genericiooptions.IOStreams
}

// NewCommand returns the version command.
func NewCommand(flags *genericclioptions.ConfigFlags, streams genericiooptions.IOStreams) *cobra.Command {
	o := &Options{ConfigFlags: flags, IOStreams: streams}
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the version of this binary",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.Validate(); err != nil {
				return err
			}
			return o.Run()
		},
	}
	cmd.Flags().StringVarP(&o.Output, "output", "o", "", "output format: one of '', json, yaml")
	cmd.Flags().BoolVar(&o.ClientOnly, "client", false, "only this binary's version; do not contact the cluster")
	return cmd
}

// Validate checks the output format.
func (o *Options) Validate() error {
	switch o.Output {
	case "", "json", "yaml":
		return nil
	}
	return fmt.Errorf("unknown output format %q: use json or yaml, or leave -o out", o.Output)
}

// Run prints the version.
func (o *Options) Run() error {
	info := Report{Client: Get()}
	if !o.ClientOnly && o.ConfigFlags != nil {
		o.server(&info)
	}
	switch o.Output {
	case "json":
		data, err := json.MarshalIndent(info, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintln(o.Out, string(data))
		return err
	case "yaml":
		data, err := yaml.Marshal(info)
		if err != nil {
			return err
		}
		_, err = o.Out.Write(data)
		return err
	}
	_, err := fmt.Fprintf(o.Out, "Client: %s (%s, %s)\n", info.Client.Version, info.Client.GoVersion, info.Client.Platform)
	if err == nil && info.Server != "" {
		_, err = fmt.Fprintf(o.Out, "Server: Kubernetes %s\n", info.Server)
	}
	if err == nil && info.CAImage != "" {
		_, err = fmt.Fprintf(o.Out, "Mesh CA: %s\n", info.CAImage)
	}
	return err
}

// server fills in what the cluster says, leaving it out when the cluster
// cannot be reached: version must work without one.
func (o *Options) server(r *Report) {
	config, err := o.ConfigFlags.ToRESTConfig()
	if err != nil {
		return
	}
	config.Timeout = 5 * time.Second
	client, err := kubernetes.NewForConfig(config)
	if err != nil {
		return
	}
	if v, err := client.Discovery().ServerVersion(); err == nil {
		r.Server = v.GitVersion
	}
	d, err := client.AppsV1().Deployments(cluster.DefaultCANamespace).Get(context.Background(), deploy.CAName, metav1.GetOptions{})
	if err == nil && len(d.Spec.Template.Spec.Containers) > 0 {
		r.CAImage = d.Spec.Template.Spec.Containers[0].Image
	}
}
