// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"context"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
	cacheddiscovery "k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/metadata/metadatainformer"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/util/keyutil"
	"k8s.io/controller-manager/pkg/informerfactory"
	"k8s.io/klog/v2"
	"k8s.io/kubernetes/pkg/controller/garbagecollector"
	serviceaccountcontroller "k8s.io/kubernetes/pkg/controller/serviceaccount"
	"k8s.io/kubernetes/pkg/serviceaccount"
)

// gcSyncPeriod is how often the garbage collector rediscovers resources, as
// kube-controller-manager does by default.
const gcSyncPeriod = 30 * time.Second

// startControllers runs the controllers of kube-controller-manager that the
// mesh depends on: default ServiceAccounts per namespace, legacy token
// Secrets filled by the tokens controller, and owner-reference garbage
// collection.
func startControllers(ctx context.Context, loopback *rest.Config, files *clusterFiles, cfg config) error {
	logger := klog.FromContext(ctx)
	client, err := kubernetes.NewForConfig(loopback)
	if err != nil {
		return err
	}
	factory := informers.NewSharedInformerFactory(client, 0)

	saController, err := serviceaccountcontroller.NewServiceAccountsController(logger,
		factory.Core().V1().ServiceAccounts(), factory.Core().V1().Namespaces(), client,
		serviceaccountcontroller.DefaultServiceAccountsControllerOptions())
	if err != nil {
		return fmt.Errorf("service-account controller: %w", err)
	}

	signingKey, err := keyutil.PrivateKeyFromFile(files.saKey)
	if err != nil {
		return err
	}
	legacyTokens, err := serviceaccount.JWTTokenGenerator(serviceaccount.LegacyIssuer, signingKey)
	if err != nil {
		return err
	}
	tokensController, err := serviceaccountcontroller.NewTokensController(logger,
		factory.Core().V1().ServiceAccounts(), factory.Core().V1().Secrets(), client,
		serviceaccountcontroller.TokensControllerOptions{TokenGenerator: legacyTokens, RootCA: files.serviceAccountCA})
	if err != nil {
		return fmt.Errorf("tokens controller: %w", err)
	}

	metadataClient, err := metadata.NewForConfig(loopback)
	if err != nil {
		return err
	}
	metadataFactory := metadatainformer.NewSharedInformerFactory(metadataClient, 0)
	restMapper := restmapper.NewDeferredDiscoveryRESTMapper(cacheddiscovery.NewMemCacheClient(client.Discovery()))
	restMapper.Reset()
	informersStarted := make(chan struct{})
	gc, err := garbagecollector.NewGarbageCollector(ctx, client, metadataClient, restMapper,
		garbagecollector.DefaultIgnoredResources(),
		informerfactory.NewInformerFactory(factory, metadataFactory), informersStarted)
	if err != nil {
		return fmt.Errorf("garbage collector: %w", err)
	}

	go saController.Run(ctx, 1)
	go tokensController.Run(ctx, 1)
	go gc.Run(ctx, 2, gcSyncPeriod)
	go gc.Sync(ctx, client.Discovery(), gcSyncPeriod)
	go wait.UntilWithContext(ctx, func(context.Context) { restMapper.Reset() }, gcSyncPeriod)

	factory.Start(ctx.Done())
	metadataFactory.Start(ctx.Done())
	close(informersStarted)
	return nil
}
