// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

// Command istio-peer runs Istio's own CA server or its node agent's SDS
// server, wired as istiod and pilot-agent wire them, so that meshcert's
// benchmarks can load both with the same generator in the same run. It is
// built only by make bench, never by make test, from a module of its own
// that pins istio.io/istio.
//
//	istio-peer ca  --listen ADDR --kubeconfig FILE --root-out FILE [--qps 80 --burst 160]
//	istio-peer sds --dir DIR --ca-address ADDR --ca-root-file FILE --token-file FILE [--cert-ttl 24h]
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	meshconfig "istio.io/api/mesh/v1alpha1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"istio.io/istio/pkg/config/mesh"
	"istio.io/istio/pkg/security"
	"istio.io/istio/security/pkg/credentialfetcher"
	"istio.io/istio/security/pkg/nodeagent/cache"
	"istio.io/istio/security/pkg/nodeagent/caclient/providers/citadel"
	"istio.io/istio/security/pkg/nodeagent/sds"
	pkica "istio.io/istio/security/pkg/pki/ca"
	caserver "istio.io/istio/security/pkg/server/ca"
	"istio.io/istio/security/pkg/server/ca/authenticate"
	"istio.io/istio/security/pkg/server/ca/authenticate/kubeauth"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: istio-peer ca|sds [flags]")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch os.Args[1] {
	case "ca":
		err = runCA(ctx, os.Args[2:])
	case "sds":
		err = runSDS(ctx, os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q: use ca or sds", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "istio-peer:", err)
		os.Exit(1)
	}
}

// fixedMesh is istiod's mesh configuration holder with the defaults: trust
// domain cluster.local.
type fixedMesh struct{ config *meshconfig.MeshConfig }

func (m fixedMesh) Mesh() *meshconfig.MeshConfig { return m.config }

// runCA serves Istio's CA as istiod does: a self-signed root (kept in memory
// rather than in the istio-ca-secret Secret, so that it needs no rights
// beyond TokenReview), istiod's default certificate lifetimes, and its
// authenticators in its order, the client certificate and then the
// Kubernetes JWT checked by a TokenReview per request with istiod's client
// limits.
func runCA(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("ca", flag.ExitOnError)
	listen := fs.String("listen", "127.0.0.1:0", "the gRPC address")
	kubeconfig := fs.String("kubeconfig", "", "the kubeconfig the CA's TokenReviews are sent with")
	rootOut := fs.String("root-out", "", "where to write the root certificate once the CA serves")
	qps := fs.Float64("qps", 80, "the Kubernetes client's QPS (istiod's default is 80; 0 lifts the limit)")
	burst := fs.Int("burst", 160, "the Kubernetes client's burst (istiod's default is 160)")
	_ = fs.Parse(args)
	if *kubeconfig == "" || *rootOut == "" {
		return errors.New("--kubeconfig and --root-out are required")
	}
	restConfig, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		return err
	}
	restConfig.QPS, restConfig.Burst = float32(*qps), *burst
	if *qps == 0 {
		restConfig.QPS = -1
	}
	client, err := kubernetes.NewForConfig(restConfig)
	if err != nil {
		return err
	}
	opts, err := pkica.NewSelfSignedDebugIstioCAOptions("", 10*365*24*time.Hour, 24*time.Hour, 90*24*time.Hour, "cluster.local", 2048)
	if err != nil {
		return err
	}
	istioCA, err := pkica.NewIstioCA(opts)
	if err != nil {
		return err
	}
	authenticators := []security.Authenticator{
		&authenticate.ClientCertAuthenticator{},
		kubeauth.NewKubeJWTAuthenticator(fixedMesh{mesh.DefaultMeshConfig()}, client, "Kubernetes", nil, nil),
	}
	server, err := caserver.New(istioCA, 90*24*time.Hour, authenticators, nil)
	if err != nil {
		return err
	}
	certPEM, keyPEM, err := istioCA.GenKeyCert([]string{"localhost", "istiod.istio-system.svc"}, 24*time.Hour, false)
	if err != nil {
		return err
	}
	serving, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return err
	}
	rootPEM := istioCA.GetCAKeyCertBundle().GetRootCertPem()
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(rootPEM)
	grpcServer := grpc.NewServer(grpc.Creds(credentials.NewTLS(&tls.Config{
		Certificates: []tls.Certificate{serving}, ClientAuth: tls.VerifyClientCertIfGiven, ClientCAs: roots,
		MinVersion: tls.VersionTLS12,
	})))
	server.Register(grpcServer)
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	// Renamed into place, so the harness waiting for the file never reads it
	// half written.
	if err := os.WriteFile(*rootOut+".tmp", rootPEM, 0o644); err != nil {
		return err
	}
	if err := os.Rename(*rootOut+".tmp", *rootOut); err != nil {
		return err
	}
	fmt.Println("istio CA serving on", ln.Addr())
	go func() { <-ctx.Done(); grpcServer.Stop() }()
	return grpcServer.Serve(ln)
}

// runSDS serves Istio's SDS as pilot-agent's initSdsServer does: a Citadel
// client with the token file as its credential, the secret manager and the
// SDS server on the workload socket below dir, for the one identity of the
// token.
func runSDS(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("sds", flag.ExitOnError)
	dir := fs.String("dir", "", "the working directory; the socket is ./var/run/secrets/workload-spiffe-uds/socket below it")
	caAddress := fs.String("ca-address", "", "Istio's CA")
	caRoot := fs.String("ca-root-file", "", "the root the CA's serving certificate chains to")
	caName := fs.String("ca-server-name", "localhost", "the name the CA's serving certificate is checked for")
	tokenFile := fs.String("token-file", "", "the workload's projected service-account token")
	certTTL := fs.Duration("cert-ttl", 24*time.Hour, "the certificate lifetime asked for (pilot-agent's SECRET_TTL)")
	_ = fs.Parse(args)
	if *dir == "" || *caAddress == "" || *caRoot == "" || *tokenFile == "" {
		return errors.New("--dir, --ca-address, --ca-root-file and --token-file are required")
	}
	if err := os.MkdirAll(filepath.Join(*dir, security.WorkloadIdentityPath), 0o755); err != nil {
		return err
	}
	if err := os.Chdir(*dir); err != nil {
		return err
	}
	credFetcher, err := credentialfetcher.NewCredFetcher(security.JWT, "cluster.local", *tokenFile, "")
	if err != nil {
		return err
	}
	// pilot-agent's defaults, but for ECDSA P-256 workload keys
	// (ECC_SIGNATURE_ALGORITHM=ECDSA), the keys meshcert's agent makes.
	opts := &security.Options{
		CAEndpoint: *caAddress, CAEndpointSAN: *caName, CAProviderName: "Citadel", TrustDomain: "cluster.local",
		WorkloadRSAKeySize: 2048, ECCSigAlg: "ECDSA", ECCCurve: "P256",
		SecretTTL: *certTTL, SecretRotationGracePeriodRatio: 0.5, SecretRotationGracePeriodRatioJitter: 0.01,
		CredFetcher: credFetcher, ClusterID: "Kubernetes", FileDebounceDuration: 100 * time.Millisecond,
	}
	caClient, err := citadel.NewCitadelClient(opts, &citadel.TLSOptions{RootCert: *caRoot})
	if err != nil {
		return err
	}
	secrets, err := cache.NewSecretManagerClient(caClient, opts)
	if err != nil {
		return err
	}
	server := sds.NewServer(opts, secrets, nil)
	secrets.RegisterSecretHandler(server.OnSecretUpdate)
	fmt.Println("istio SDS serving on", security.GetIstioSDSServerSocketPath())
	<-ctx.Done()
	server.Stop()
	secrets.Close()
	return nil
}
