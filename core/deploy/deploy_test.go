// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

package deploy

import (
	"testing"
	"time"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/meshcert/kubectl-meshcert/core/mesh"
	"github.com/meshcert/kubectl-meshcert/core/monitoring/rules"
)

func rendered(t *testing.T, o Options) (ca *appsv1.Deployment, agent *appsv1.DaemonSet) {
	t.Helper()
	require.NoError(t, o.Validate())
	for _, obj := range Render(o) {
		switch v := obj.(type) {
		case *appsv1.Deployment:
			ca = v
		case *appsv1.DaemonSet:
			agent = v
		}
	}
	require.NotNil(t, ca)
	return ca, agent
}

func TestRenderOptions(t *testing.T) {
	base := Options{Namespace: "mesh", Image: "img:1", Replicas: 1, TrustDomain: "cluster.local", Audience: "istio-ca"}
	for name, tc := range map[string]struct {
		mutate      func(*Options)
		wantCA      []string
		wantNotCA   []string
		wantAgent   []string
		wantNoAgent bool
	}{
		"sds has an agent and no file-mount controller": {
			mutate:    func(o *Options) { o.Mode = mesh.ModeSDS },
			wantNotCA: []string{"--file-mount"},
			wantAgent: []string{"--sds-socket=" + mesh.SocketPath},
		},
		"sds with file-mount runs both": {
			mutate:    func(o *Options) { o.Mode, o.FileMount, o.FileMountPropagation = mesh.ModeSDS, true, 12*time.Second },
			wantCA:    []string{"--file-mount", "--file-mount-propagation=12s"},
			wantAgent: []string{"--sds-socket=" + mesh.SocketPath},
		},
		"file-mount has no agent": {
			mutate:      func(o *Options) { o.Mode = mesh.ModeFileMount },
			wantCA:      []string{"--file-mount"},
			wantNoAgent: true,
		},
		"local token verification reaches the CA": {
			mutate:    func(o *Options) { o.Mode, o.TokenVerification = mesh.ModeSDS, "local" },
			wantCA:    []string{"--token-verification=local"},
			wantAgent: []string{"--sds-socket=" + mesh.SocketPath},
		},
		"TokenReview is the CA's default": {
			mutate:    func(o *Options) { o.Mode = mesh.ModeSDS },
			wantNotCA: []string{"--token-verification=local"},
			wantAgent: []string{"--sds-socket=" + mesh.SocketPath},
		},
		"lifetimes and backpressure reach the CA and the agent": {
			mutate:    func(o *Options) { o.Mode, o.WorkloadCertTTL, o.MaxConcurrentSignings = mesh.ModeSDS, 4*time.Second, 4 },
			wantCA:    []string{"--workload-cert-ttl=4s", "--max-concurrent-signings=4"},
			wantAgent: []string{"--workload-cert-ttl=4s"},
		},
	} {
		t.Run(name, func(t *testing.T) {
			o := base
			tc.mutate(&o)
			ca, agent := rendered(t, o)
			args := ca.Spec.Template.Spec.Containers[0].Args
			for _, want := range tc.wantCA {
				require.Contains(t, args, want)
			}
			for _, unwanted := range tc.wantNotCA {
				require.NotContains(t, args, unwanted)
			}
			if tc.wantNoAgent {
				require.Nil(t, agent)
				return
			}
			require.NotNil(t, agent)
			container := agent.Spec.Template.Spec.Containers[0]
			for _, want := range tc.wantAgent {
				require.Contains(t, container.Args, want)
			}
			require.Equal(t, int64(0), *container.SecurityContext.RunAsUser, "the agent creates its socket in a root-owned hostPath directory")
			require.Equal(t, []corev1.Capability{"ALL"}, container.SecurityContext.Capabilities.Drop)
			require.False(t, *container.SecurityContext.AllowPrivilegeEscalation)
		})
	}
}

func TestValidateRefusesBadOptions(t *testing.T) {
	base := Options{Namespace: "mesh", Image: "img:1", Replicas: 1, Mode: mesh.ModeSDS}
	for name, tc := range map[string]struct {
		mutate func(*Options)
		want   string
	}{
		"unknown mode":      {func(o *Options) { o.Mode = "magic" }, `unknown mode "magic"`},
		"negative lifetime": {func(o *Options) { o.WorkloadCertTTL = -time.Second }, "must be positive"},
		"negative signings": {func(o *Options) { o.MaxConcurrentSignings = -1 }, "at least 1"},
		"no image":          {func(o *Options) { o.Image = "" }, "an image is required"},
		"unknown tokens":    {func(o *Options) { o.TokenVerification = "trust-me" }, `unknown token verification "trust-me": use tokenreview or local`},
	} {
		t.Run(name, func(t *testing.T) {
			o := base
			tc.mutate(&o)
			require.ErrorContains(t, o.Validate(), tc.want)
		})
	}
}

// Every container install renders runs with the runtime's default seccomp
// profile, no privilege escalation, no capabilities, and requests and
// limits.
func TestEveryContainerIsConfined(t *testing.T) {
	for _, mode := range []string{mesh.ModeSDS, mesh.ModeFileMount} {
		o := DefaultOptions()
		o.Image, o.Mode = "img:1", mode
		for _, obj := range Render(o) {
			var spec *corev1.PodSpec
			switch w := obj.(type) {
			case *appsv1.Deployment:
				spec = &w.Spec.Template.Spec
			case *appsv1.DaemonSet:
				spec = &w.Spec.Template.Spec
			default:
				continue
			}
			for _, c := range spec.Containers {
				sc := c.SecurityContext
				require.NotNil(t, sc, c.Name)
				require.Equal(t, corev1.SeccompProfileTypeRuntimeDefault, sc.SeccompProfile.Type, c.Name)
				require.False(t, *sc.AllowPrivilegeEscalation, c.Name)
				require.Equal(t, []corev1.Capability{"ALL"}, sc.Capabilities.Drop, c.Name)
				for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
					require.Contains(t, c.Resources.Requests, r, "%s requests %s", c.Name, r)
					require.Contains(t, c.Resources.Limits, r, "%s limits %s", c.Name, r)
				}
			}
		}
	}
}

func TestMonitoringObjectsFindTheNamedPorts(t *testing.T) {
	for name, tc := range map[string]struct {
		mode      string
		wantKinds []string
	}{
		"sds scrapes the CA and the agents":  {mode: mesh.ModeSDS, wantKinds: []string{"ServiceMonitor", "PrometheusRule", "PodMonitor"}},
		"file-mount has no agents to scrape": {mode: mesh.ModeFileMount, wantKinds: []string{"ServiceMonitor", "PrometheusRule"}},
	} {
		t.Run(name, func(t *testing.T) {
			o := Options{Namespace: "mesh", Image: "img:1", Replicas: 1, Mode: tc.mode, Monitoring: true}
			var kinds []string
			var service *corev1.Service
			for _, obj := range Render(o) {
				switch v := obj.(type) {
				case *monitoringv1.ServiceMonitor:
					kinds = append(kinds, v.Kind)
					require.Equal(t, metricsPortName, v.Spec.Endpoints[0].Port)
				case *monitoringv1.PodMonitor:
					kinds = append(kinds, v.Kind)
					require.Equal(t, metricsPortName, *v.Spec.PodMetricsEndpoints[0].Port)
				case *monitoringv1.PrometheusRule:
					kinds = append(kinds, v.Kind)
					require.Equal(t, rules.Group(rules.DefaultThresholds()), v.Spec.Groups[0])
				case *corev1.Service:
					service = v
				}
			}
			require.Equal(t, tc.wantKinds, kinds)
			require.Equal(t, metricsPortName, service.Spec.Ports[1].Name)
			ca, agent := rendered(t, o)
			require.Contains(t, ca.Spec.Template.Spec.Containers[0].Ports, corev1.ContainerPort{Name: metricsPortName, ContainerPort: mesh.CAMonitoringPort})
			if agent != nil {
				require.Contains(t, agent.Spec.Template.Spec.Containers[0].Ports, corev1.ContainerPort{Name: metricsPortName, ContainerPort: mesh.AgentMonitoringPort})
			}
		})
	}
	for _, obj := range Render(Options{Namespace: "mesh", Image: "img:1", Replicas: 1, Mode: mesh.ModeSDS}) {
		require.NotEqual(t, monitoringv1.SchemeGroupVersion.String(), obj.GetObjectKind().GroupVersionKind().GroupVersion().String(), "monitoring objects only with Monitoring")
	}
}
