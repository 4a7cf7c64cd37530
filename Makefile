# Copyright 2026 The kubectl-meshcert Authors.
# SPDX-License-Identifier: Apache-2.0

GO      ?= go
BIN     := $(CURDIR)/bin
MODULE  := github.com/meshcert/kubectl-meshcert
VERSION ?= v0.0.0-$(shell git rev-parse --short HEAD 2>/dev/null || echo dev)
LDFLAGS := -X $(MODULE)/plugin/version.Version=$(VERSION)
# Go packages of ours, for gofmt: the main module and the nested control-plane module.
GO_DIRS := cmd core harness plugin
TEST_FLAGS ?= -timeout 30m

.PHONY: all build controlplane test bench lint demo clean

all: lint build test

## build: every binary under cmd/, plus the embedded control plane, into bin/.
build: controlplane
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/ ./cmd/...

## controlplane: the kube-apiserver + etcd + controllers program (its own Go module; cold build ~4-6 min, then seconds).
KUBE_VERSION := v1.37.2
KUBE_LDFLAGS := -X k8s.io/component-base/version.gitVersion=$(KUBE_VERSION) -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=37 -X k8s.io/component-base/version.gitTreeState=clean
controlplane:
	cd harness/controlplane && $(GO) build -ldflags '$(KUBE_LDFLAGS)' -o $(BIN)/meshcert-controlplane .

## test: unit tests and tests against real local control planes.
test: controlplane
	$(GO) test $(TEST_FLAGS) ./...

## bench: benchmarks; their figures go into issue notes, never into assertions.
bench: controlplane
	$(GO) test -run '^$$' -bench . -benchtime 3s ./...

## lint: gofmt must have nothing to say; go vet both modules.
lint:
	@unformatted=$$(gofmt -l $(GO_DIRS)); \
	if [ -n "$$unformatted" ]; then echo "gofmt -l reports:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	cd harness/controlplane && $(GO) vet ./...

## demo: the main job on the embedded local control plane.
demo: build
	$(BIN)/meshcert-harness demo

clean:
	rm -rf $(BIN) dist
