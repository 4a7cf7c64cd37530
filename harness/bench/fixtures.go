// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

package bench

import (
	"context"
	"fmt"
	"net/url"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/meshcert/kubectl-meshcert/core/pki"
	"github.com/meshcert/kubectl-meshcert/core/token"
)

// workloadRequests creates n service accounts in namespace, a pod of each
// on node (never run: only its name and UID matter), and returns for each
// a token bound to its pod, with the mesh's audience and an hour to live,
// and an ECDSA P-256 CSR for its SPIFFE ID.
func workloadRequests(ctx context.Context, client kubernetes.Interface, namespace, node string, n int) ([]Request, error) {
	_, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return nil, err
	}
	requests := make([]Request, n)
	for i := range n {
		name := fmt.Sprintf("sa-%d", i)
		if _, err := client.CoreV1().ServiceAccounts(namespace).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
			return nil, err
		}
		pod, err := client.CoreV1().Pods(namespace).Create(ctx, &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: corev1.PodSpec{ServiceAccountName: name, NodeName: node,
				Containers: []corev1.Container{{Name: "workload", Image: "meshcert/meshcert:local"}}},
		}, metav1.CreateOptions{})
		if err != nil {
			return nil, err
		}
		tr, err := client.CoreV1().ServiceAccounts(namespace).CreateToken(ctx, name, &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{
			Audiences: []string{token.DefaultAudience}, ExpirationSeconds: ptr.To[int64](3600),
			BoundObjectRef: &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: pod.Name, UID: pod.UID},
		}}, metav1.CreateOptions{})
		if err != nil {
			return nil, err
		}
		key, err := pki.GenerateKey(pki.ECDSAP256)
		if err != nil {
			return nil, err
		}
		id := &url.URL{Scheme: "spiffe", Host: "cluster.local", Path: "/ns/" + namespace + "/sa/" + name}
		csr, err := pki.NewCSR(key, id)
		if err != nil {
			return nil, err
		}
		requests[i] = Request{Token: tr.Status.Token, CSR: string(csr)}
	}
	return requests, nil
}
