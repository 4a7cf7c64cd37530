// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

package kind

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/meshcert/kubectl-meshcert/core/filemount"
	"github.com/meshcert/kubectl-meshcert/harness/provider"
)

func TestClusterConfig(t *testing.T) {
	for name, tc := range map[string]struct {
		profile       string
		wantAudiences bool
		wantWorkers   int
		wantErr       string
	}{
		"bound adds the mesh audience and two workers": {profile: provider.ProfileBound, wantAudiences: true, wantWorkers: 2},
		"legacy keeps kind's API server and one node":  {profile: provider.ProfileLegacy},
		"an unknown profile is refused":                {profile: "ancient", wantErr: `unknown profile "ancient"`},
	} {
		t.Run(name, func(t *testing.T) {
			cfg, err := clusterConfig(tc.profile)
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			require.Len(t, cfg.Nodes, 1+tc.wantWorkers)
			require.Equal(t, "control-plane", string(cfg.Nodes[0].Role))
			require.True(t, cfg.Networking.DisableDefaultCNI, "the node image's bridge CNI replaces kindnetd")
			audiences := false
			for _, patch := range cfg.KubeadmConfigPatches {
				var doc map[string]any
				require.NoError(t, yaml.Unmarshal([]byte(patch), &doc))
				require.NotContains(t, doc, "apiVersion", "a patch with apiVersion stops matching when kind changes kubeadm API versions")
				require.NotEmpty(t, doc["kind"])
				if strings.Contains(patch, "api-audiences") {
					audiences = true
					require.Contains(t, patch, Audience)
				}
			}
			require.Equal(t, tc.wantAudiences, audiences)
		})
	}
}

func TestNoMeshTokensPolicy(t *testing.T) {
	policy, binding := noMeshTokens()
	require.Equal(t, policy.Name, binding.Spec.PolicyName)
	require.Equal(t, []string{"serviceaccounts/token"}, policy.Spec.MatchConstraints.ResourceRules[0].Resources)
	expression := policy.Spec.Validations[0].Expression
	require.Contains(t, expression, "'"+Audience+"'")
	require.Contains(t, expression, "!has(object.spec.audiences)", "tokens without audiences (the kubelet's API tokens) stay allowed")
	require.Contains(t, policy.Spec.Validations[0].Message, "file-mount path")
}

func TestWorkloadPod(t *testing.T) {
	sds := workloadPod("img:1", provider.WorkloadSpec{Name: "a", Namespace: "ns", ServiceAccount: "sa", Path: provider.MeshSDS, Allow: []string{"spiffe://x/ns/ns/sa/b"}})
	c := sds.Spec.Containers[0]
	require.Equal(t, "img:1", c.Image)
	require.Contains(t, c.Args, "--sds-socket=/var/run/meshcert/sds.sock")
	require.Contains(t, c.Args, "--token-file="+tokenDir+"/"+tokenFile)
	require.Contains(t, c.Args, "--allow=spiffe://x/ns/ns/sa/b")
	require.False(t, *sds.Spec.AutomountServiceAccountToken, "the workload needs no API token")
	require.Equal(t, corev1.HostPathDirectory, *sds.Spec.Volumes[0].HostPath.Type, "the agent creates the socket directory")

	fm := workloadPod("img:1", provider.WorkloadSpec{Name: "b", Namespace: "ns", ServiceAccount: "sa", Path: provider.MeshFileMount})
	require.Contains(t, fm.Spec.Containers[0].Args, "--cert-dir="+filemount.MountPath)
	require.Equal(t, filemount.SecretName("sa"), fm.Spec.Volumes[0].Secret.SecretName)
	require.Equal(t, int64(65532), *fm.Spec.SecurityContext.FSGroup, "the Secret's files are group-readable")
}
