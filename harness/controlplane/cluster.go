// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/spf13/pflag"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilerrors "k8s.io/apimachinery/pkg/util/errors"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apiserver/pkg/storage/etcd3/testserver"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/klog/v2"
	"k8s.io/kubernetes/cmd/kube-apiserver/app"
	"k8s.io/kubernetes/cmd/kube-apiserver/app/options"
)

// cluster is a running API server, its etcd and its controllers.
type cluster struct {
	ready readyLine

	etcdTB       *programTB
	cancelServer context.CancelFunc
	serverDone   chan error
	cancelCtrl   context.CancelFunc
}

func startCluster(parent context.Context, cfg config) (*cluster, error) {
	c := &cluster{etcdTB: &programTB{name: "etcd", dir: cfg.dir}}

	files, err := writeClusterFiles(cfg.dir)
	if err != nil {
		return c, err
	}

	var etcdServers []string
	if err := c.etcdTB.guard(func() {
		etcdClient := testserver.RunEtcd(c.etcdTB, nil)
		etcdServers = etcdClient.Endpoints()
		_ = etcdClient.Close()
	}); err != nil {
		return c, fmt.Errorf("start etcd: %w", err)
	}

	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(cfg.port)))
	if err != nil {
		return c, fmt.Errorf("listen for the API server: %w", err)
	}
	port := ln.Addr().(*net.TCPAddr).Port

	s := options.NewServerRunOptions()
	fs := pflag.NewFlagSet("kube-apiserver", pflag.ContinueOnError)
	for _, set := range s.Flags().FlagSets {
		fs.AddFlagSet(set)
	}
	s.SecureServing.Listener = ln
	s.SecureServing.BindPort = port
	args := []string{
		"--advertise-address=127.0.0.1",
		"--etcd-servers=" + etcdServers[0],
		"--tls-cert-file=" + files.servingCert,
		"--tls-private-key-file=" + files.servingKey,
		"--client-ca-file=" + files.clientCA,
		"--authorization-mode=RBAC",
		"--service-account-issuer=" + cfg.issuer,
		"--service-account-key-file=" + files.saPub,
		"--service-account-signing-key-file=" + files.saKey,
		"--api-audiences=" + cfg.issuer,
		"--token-auth-file=" + files.userTokens,
		"--service-cluster-ip-range=10.96.0.0/16",
		"--endpoint-reconciler-type=none",
	}
	if err := fs.Parse(args); err != nil {
		return c, fmt.Errorf("parse API server flags: %w", err)
	}
	if err := s.GenericServerRunOptions.ComponentGlobalsRegistry.Set(); err != nil {
		return c, err
	}
	rest.SetDefaultWarningHandler(rest.NoWarnings{})

	serverCtx, cancelServer := context.WithCancel(context.Background())
	c.cancelServer = cancelServer
	completed, err := s.Complete(serverCtx)
	if err != nil {
		return c, fmt.Errorf("complete API server options: %w", err)
	}
	if errs := completed.Validate(); len(errs) != 0 {
		return c, fmt.Errorf("validate API server options: %w", utilerrors.NewAggregate(errs))
	}
	if cfg.profile == profileLegacy {
		// Without a token generator the API server registers no
		// serviceaccounts/token subresource: TokenRequest answers 404, as on
		// clusters from before Kubernetes 1.12. Authentication and the issuer's
		// discovery documents are built from the other options and still work.
		completed.ServiceAccountIssuer = nil
	}

	apiConfig, err := app.NewConfig(completed)
	if err != nil {
		return c, fmt.Errorf("configure API server: %w", err)
	}
	completedConfig, err := apiConfig.Complete()
	if err != nil {
		return c, fmt.Errorf("complete API server config: %w", err)
	}
	server, err := app.CreateServerChain(completedConfig)
	if err != nil {
		return c, fmt.Errorf("create API server chain: %w", err)
	}
	loopback := rest.CopyConfig(server.GenericAPIServer.LoopbackClientConfig)

	c.serverDone = make(chan error, 1)
	go func() {
		prepared, err := server.PrepareRun()
		if err == nil {
			err = prepared.Run(serverCtx)
		}
		c.serverDone <- err
		close(c.serverDone)
	}()

	c.ready = readyLine{
		Profile:    cfg.profile,
		Host:       "https://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		Kubeconfig: filepath.Join(cfg.dir, "kubeconfig"),
		Issuer:     cfg.issuer,
		PID:        os.Getpid(),
		UserToken:  files.userToken,
		SigningKey: files.saKey,
	}
	if err := writeKubeconfig(c.ready.Kubeconfig, c.ready.Host, files); err != nil {
		return c, err
	}
	admin, err := clientcmd.BuildConfigFromFlags("", c.ready.Kubeconfig)
	if err != nil {
		return c, err
	}
	adminClient, err := kubernetes.NewForConfig(admin)
	if err != nil {
		return c, err
	}

	waitCtx, cancelWait := context.WithTimeout(parent, readyTimeout)
	defer cancelWait()
	if err := c.waitHealthy(waitCtx, adminClient); err != nil {
		return c, err
	}

	ctrlCtx, cancelCtrl := context.WithCancel(context.Background())
	c.cancelCtrl = cancelCtrl
	if err := startControllers(ctrlCtx, loopback, files, cfg); err != nil {
		return c, fmt.Errorf("start controllers: %w", err)
	}
	if err := waitDefaultServiceAccount(waitCtx, adminClient); err != nil {
		return c, err
	}
	return c, nil
}

func (c *cluster) waitHealthy(ctx context.Context, client kubernetes.Interface) error {
	err := wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		select {
		case err := <-c.serverDone:
			return false, fmt.Errorf("API server exited: %v", err)
		default:
		}
		status := 0
		client.CoreV1().RESTClient().Get().AbsPath("/readyz").Do(ctx).StatusCode(&status)
		return status == 200, nil
	})
	if err != nil {
		return fmt.Errorf("wait for /readyz: %w", err)
	}
	return nil
}

func waitDefaultServiceAccount(ctx context.Context, client kubernetes.Interface) error {
	err := wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		_, err := client.CoreV1().ServiceAccounts(metav1.NamespaceDefault).Get(ctx, "default", metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return err == nil, nil
	})
	if err != nil {
		return fmt.Errorf("wait for the default ServiceAccount: %w", err)
	}
	return nil
}

// stop shuts the controllers and the API server down before etcd, so that
// the API server never runs against a stopped store.
func (c *cluster) stop() {
	if c.cancelCtrl != nil {
		c.cancelCtrl()
	}
	if c.cancelServer != nil {
		c.cancelServer()
	}
	if c.serverDone != nil {
		select {
		case err := <-c.serverDone:
			if err != nil && !errors.Is(err, context.Canceled) {
				klog.ErrorS(err, "API server stopped with an error")
			}
		case <-time.After(20 * time.Second):
			klog.Error("API server did not stop within 20s; stopping etcd anyway")
		}
	}
	c.etcdTB.runCleanups()
}

func writeKubeconfig(path, host string, files *clusterFiles) error {
	const name = "meshcert-local"
	kubeconfig := clientcmdapi.NewConfig()
	kubeconfig.Clusters[name] = &clientcmdapi.Cluster{Server: host, CertificateAuthorityData: files.servingBundle}
	kubeconfig.AuthInfos[name] = &clientcmdapi.AuthInfo{ClientCertificateData: files.adminCertPEM, ClientKeyData: files.adminKeyPEM}
	kubeconfig.Contexts[name] = &clientcmdapi.Context{Cluster: name, AuthInfo: name, Namespace: metav1.NamespaceDefault}
	kubeconfig.CurrentContext = name
	return clientcmd.WriteToFile(*kubeconfig, path)
}
