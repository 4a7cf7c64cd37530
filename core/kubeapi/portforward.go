// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

package kubeapi

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/transport/spdy"
)

// ForwardToService forwards a local port to a running pod behind Service
// name, as `kubectl port-forward svc/NAME` does, and returns the local
// address. The forward ends with ctx.
func ForwardToService(ctx context.Context, config *rest.Config, client kubernetes.Interface, namespace, name string, port int32) (string, error) {
	svc, err := client.CoreV1().Services(namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return "", Explain(err, fmt.Sprintf("find Service %s/%s", namespace, name))
	}
	targetPort := port
	for _, p := range svc.Spec.Ports {
		if p.Port == port && p.TargetPort.IntVal != 0 {
			targetPort = p.TargetPort.IntVal
		}
	}
	pods, err := client.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{LabelSelector: labels.SelectorFromSet(svc.Spec.Selector).String()})
	if err != nil {
		return "", Explain(err, "list the Service's pods")
	}
	var pod *corev1.Pod
	for i := range pods.Items {
		if pods.Items[i].Status.Phase == corev1.PodRunning {
			pod = &pods.Items[i]
			break
		}
	}
	if pod == nil {
		return "", fmt.Errorf("no running pod behind Service %s/%s: is the CA up? (kubectl -n %s get pods)", namespace, name, namespace)
	}
	return ForwardToPod(ctx, config, client, pod.Namespace, pod.Name, targetPort)
}

// ForwardToPod forwards a local port to port of a pod, as `kubectl
// port-forward pod/NAME` does, and returns the local address. The forward
// ends with ctx.
func ForwardToPod(ctx context.Context, config *rest.Config, client kubernetes.Interface, namespace, name string, port int32) (string, error) {
	transport, upgrader, err := spdy.RoundTripperFor(config)
	if err != nil {
		return "", err
	}
	target := client.CoreV1().RESTClient().Post().Resource("pods").Namespace(namespace).Name(name).SubResource("portforward").URL()
	dialer := spdy.NewDialer(upgrader, &http.Client{Transport: transport}, http.MethodPost, &url.URL{Scheme: target.Scheme, Host: target.Host, Path: target.Path})
	stop, ready := make(chan struct{}), make(chan struct{})
	forwarder, err := portforward.NewOnAddresses(dialer, []string{"127.0.0.1"}, []string{"0:" + strconv.Itoa(int(port))}, stop, ready, io.Discard, io.Discard)
	if err != nil {
		return "", err
	}
	errc := make(chan error, 1)
	go func() { errc <- forwarder.ForwardPorts() }()
	go func() {
		<-ctx.Done()
		close(stop)
	}()
	select {
	case <-ready:
	case err := <-errc:
		return "", fmt.Errorf("port-forward to pod %s/%s: %w", namespace, name, err)
	case <-ctx.Done():
		return "", ctx.Err()
	}
	ports, err := forwarder.GetPorts()
	if err != nil || len(ports) == 0 {
		return "", fmt.Errorf("port-forward to pod %s/%s gave no local port: %v", namespace, name, err)
	}
	return "127.0.0.1:" + strconv.Itoa(int(ports[0].Local)), nil
}
