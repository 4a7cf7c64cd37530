# Copyright 2026 The kubectl-meshcert Authors.
# SPDX-License-Identifier: Apache-2.0

GO      ?= go
BIN     := $(CURDIR)/bin
MODULE  := github.com/meshcert/kubectl-meshcert
VERSION ?= v0.0.0-$(shell git rev-parse --short HEAD 2>/dev/null || echo dev)
LDFLAGS := -X $(MODULE)/plugin/version.Version=$(VERSION)
# Go packages of ours, for gofmt: the main module and the nested control-plane module.
GO_DIRS := cmd core harness plugin bench
TEST_FLAGS ?= -timeout 30m
# What the first build costs, measured on a fresh clone with empty Go module and build caches on this
# project's 2-core machines, and what it costs once cached; make prints them as it starts each step.
TIME_CONTROLPLANE := 5 min the first time (downloading and compiling Kubernetes), seconds after
TIME_KUBECTL      := under a minute the first time, seconds after
TIME_BINARIES     := 2 min the first time (client-go, gRPC, Envoy's types), seconds after

.PHONY: prometheus chromium monitoring soak all build controlplane kubectl krew-tools golangci-lint dist dist-host test bench istio-peer lint demo clean image docker-up docker-down kind-node-image e2e

all: lint build test

## soak: an hour on the local provider (not in CI): 200 workloads, 1-minute certificates, traffic; the CA's and
## the agent's RSS and goroutines every 30 s into bin/soak/soak.csv and soak.svg; fails on a failed call or growth.
SOAK_FLAGS ?=
soak: build
	$(BIN)/meshcert-harness soak --out $(BIN)/soak $(SOAK_FLAGS)

## build: every binary under cmd/, plus the embedded control plane, into bin/.
build: controlplane
	@echo "==> [$$(date +%T)] building meshcert's binaries (cmd/...): $(TIME_BINARIES)"
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/ ./cmd/...

## controlplane: the kube-apiserver + etcd + controllers program (its own Go module; cold build ~4-6 min, then seconds).
KUBE_VERSION := v1.37.2
KUBE_LDFLAGS := -X k8s.io/component-base/version.gitVersion=$(KUBE_VERSION) -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=37 -X k8s.io/component-base/version.gitTreeState=clean
controlplane:
	@echo "==> [$$(date +%T)] building the embedded control plane (kube-apiserver, etcd and controllers $(KUBE_VERSION), module harness/controlplane): $(TIME_CONTROLPLANE)"
	cd harness/controlplane && $(GO) build -ldflags '$(KUBE_LDFLAGS)' -o $(BIN)/meshcert-controlplane .

## kubectl: kubectl v1.37.2 from the control-plane module, for the krew test's plugin lookup.
kubectl:
	@echo "==> [$$(date +%T)] building kubectl $(KUBE_VERSION) from the same module: $(TIME_KUBECTL)"
	cd harness/controlplane && $(GO) build -ldflags '$(KUBE_LDFLAGS)' -o $(BIN)/kubectl k8s.io/kubernetes/cmd/kubectl

## krew-tools: krew and its manifest validator, pinned.
KREW_VERSION := v0.4.3
krew-tools:
	GOBIN=$(BIN) GOFLAGS= $(GO) install sigs.k8s.io/krew/cmd/krew@$(KREW_VERSION) sigs.k8s.io/krew/cmd/validate-krew-manifest@$(KREW_VERSION)

## dist: krew archives for linux, darwin and windows on amd64 and arm64, and krew.yaml with their sha256s.
DIST_VERSION ?= v0.1.0
PLATFORMS    := linux/amd64 linux/arm64 darwin/amd64 darwin/arm64 windows/amd64 windows/arm64
RELEASE_URL  := https://github.com/meshcert/kubectl-meshcert/releases/download/$(DIST_VERSION)
DIST_DIR     ?= dist
KREW_COPY    ?= krew.yaml
dist:
	@rm -rf $(DIST_DIR) && mkdir -p $(DIST_DIR)/build
	$(GO) build -o $(DIST_DIR)/build/host/kubectl-meshcert ./cmd/kubectl-meshcert
	$(DIST_DIR)/build/host/kubectl-meshcert completion kubectl > $(DIST_DIR)/build/kubectl_complete-meshcert
	chmod +x $(DIST_DIR)/build/kubectl_complete-meshcert
	@for p in $(PLATFORMS); do \
		os=$${p%/*}; arch=$${p#*/}; ext=; [ $$os = windows ] && ext=.exe; \
		dir=$(DIST_DIR)/build/$${os}_$${arch}; mkdir -p $$dir; \
		CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch $(GO) build -trimpath -ldflags '-s -w -X $(MODULE)/plugin/version.Version=$(DIST_VERSION)' -o $$dir/kubectl-meshcert$$ext ./cmd/kubectl-meshcert || exit 1; \
		cp LICENSE $$dir/; \
		mkdir -p $$dir/monitoring && cp core/monitoring/rules/meshcert.rules.yaml $$dir/monitoring/ && cp core/monitoring/dashboard/meshcert.json $$dir/monitoring/meshcert-dashboard.json; \
		if [ $$os = windows ]; then \
			printf '@echo off\r\nkubectl meshcert __complete %%*\r\n' > $$dir/kubectl_complete-meshcert.cmd; \
		else \
			cp $(DIST_DIR)/build/kubectl_complete-meshcert $$dir/; \
		fi; \
		tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -C $$dir -cf - . | gzip -n > $(DIST_DIR)/kubectl-meshcert_$${os}_$${arch}.tar.gz; \
		echo "$(DIST_DIR)/kubectl-meshcert_$${os}_$${arch}.tar.gz"; \
	done
	@{ \
		echo "apiVersion: krew.googlecontainertools.github.com/v1alpha2"; \
		echo "kind: Plugin"; \
		echo "metadata:"; \
		echo "  name: meshcert"; \
		echo "spec:"; \
		echo "  version: $(DIST_VERSION)"; \
		echo "  homepage: https://github.com/meshcert/kubectl-meshcert"; \
		echo "  shortDescription: Issue, inspect and rotate service-mesh workload certificates"; \
		echo "  description: |"; \
		echo "    kubectl meshcert checks whether a cluster can issue trustworthy service-account tokens,"; \
		echo "    issues and inspects SPIFFE workload certificates on the SDS and file-mount paths,"; \
		echo "    rotates them and the mesh CA root, and installs the mesh CA and node agent."; \
		echo "  caveats: |"; \
		echo "    Shell completion of kubectl meshcert needs kubectl v1.26 or newer to find"; \
		echo "    kubectl_complete-meshcert on your PATH. krew installs it beside the plugin but does"; \
		echo "    not link it; link it once (and again after an upgrade):"; \
		echo "      ln -sf ~/.krew/store/meshcert/$(DIST_VERSION)/kubectl_complete-meshcert ~/.krew/bin/"; \
		echo "    On Windows copy kubectl_complete-meshcert.cmd from the same directory into"; \
		echo "    the krew bin directory, %USERPROFILE%/.krew/bin."; \
		echo "  platforms:"; \
		for p in $(PLATFORMS); do \
			os=$${p%/*}; arch=$${p#*/}; ext=; [ $$os = windows ] && ext=.exe; \
			sum=$$(sha256sum $(DIST_DIR)/kubectl-meshcert_$${os}_$${arch}.tar.gz | cut -d' ' -f1); \
			echo "  - selector:"; \
			echo "      matchLabels:"; \
			echo "        os: $$os"; \
			echo "        arch: $$arch"; \
			echo "    uri: $(RELEASE_URL)/kubectl-meshcert_$${os}_$${arch}.tar.gz"; \
			echo "    sha256: $$sum"; \
			echo "    bin: kubectl-meshcert$$ext"; \
			echo "    files:"; \
			echo "    - from: kubectl-meshcert$$ext"; \
			echo "      to: ."; \
			echo "    - from: kubectl_complete-meshcert$$( [ $$os = windows ] && echo .cmd )"; \
			echo "      to: ."; \
			echo "    - from: LICENSE"; \
			echo "      to: ."; \
			echo "    - from: monitoring"; \
			echo "      to: ."; \
		done; \
	} > $(DIST_DIR)/meshcert.yaml
	@if [ -n "$(KREW_COPY)" ]; then cp $(DIST_DIR)/meshcert.yaml $(KREW_COPY); echo "$(DIST_DIR)/meshcert.yaml (copied to $(KREW_COPY))"; fi

## dist-host: the same for this machine's platform only, into dist/host, for the krew test.
dist-host:
	$(MAKE) dist PLATFORMS=$$($(GO) env GOOS)/$$($(GO) env GOARCH) DIST_DIR=dist/host KREW_COPY=

## test: unit tests, tests against real local control planes, and the krew install test, all under the
## race detector.
test: controlplane kubectl krew-tools dist-host prometheus chromium
	$(GO) test -race $(TEST_FLAGS) ./...

## prometheus: Debian's prometheus package (prometheus and promtool), which the rule and alert tests run.
## The service the package may start on install is not wanted: the tests start their own servers.
prometheus:
	@command -v prometheus >/dev/null && command -v promtool >/dev/null || \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus && \
		  { pkill -x prometheus 2>/dev/null || true; }; }

## chromium: Debian's headless Chromium, which the fleet page's test drives with chromedp.
chromium:
	@command -v chromium >/dev/null || \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium; }

## monitoring: regenerate the alerting rules file and the Grafana dashboard from core/monitoring.
monitoring:
	$(GO) test ./core/monitoring/rules ./core/monitoring/dashboard -run Committed -update

## bench: the side-by-side report against Istio's own CA and SDS server (bench/report.md and its plots, rewritten),
## with the fleet of 5,000 workloads on 50 simulated nodes, then the Go benchmarks. Figures go into the report and
## issue notes, never into assertions. About 40 minutes; istio-peer's first build takes 4 more.
bench: build istio-peer
	$(BIN)/meshcert-harness bench --out bench
	$(GO) test -run '^$$' -bench . -benchtime 3s ./...

## istio-peer: Istio's CA server and node-agent SDS server as one program, from the nested module bench/istio, which
## pins istio.io/istio; only make bench builds it (cold: about 4 minutes and 130 MB).
istio-peer:
	@echo "==> [$$(date +%T)] building Istio's CA and SDS server (module bench/istio)"
	cd bench/istio && $(GO) build -o $(BIN)/istio-peer .

## golangci-lint: the linter make lint runs, pinned (a cold build takes about 3 minutes).
GOLANGCI_LINT_VERSION := v2.15.0
GOLANGCI_LINT         := $(BIN)/golangci-lint
golangci-lint:
	@if ! $(GOLANGCI_LINT) version 2>/dev/null | grep -q "version $(GOLANGCI_LINT_VERSION:v%=%)"; then \
		echo "building golangci-lint $(GOLANGCI_LINT_VERSION)"; \
		GOBIN=$(BIN) GOFLAGS= $(GO) install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION); \
	fi

## lint: gofmt must have nothing to say; golangci-lint (.golangci.yml: depguard boundaries, errcheck,
## staticcheck, revive's exported rule); go vet both nested modules; and the binaries' whole dependency
## graphs: kubectl-meshcert links no SDS server or harness, the CA and the agent link no plugin code.
lint: golangci-lint
	@unformatted=$$(gofmt -l $(GO_DIRS)); \
	if [ -n "$$unformatted" ]; then echo "gofmt -l reports:"; echo "$$unformatted"; exit 1; fi
	$(GOLANGCI_LINT) run ./...
	@if $(GO) list -deps ./cmd/kubectl-meshcert | grep -E '^(github.com/envoyproxy/go-control-plane/envoy/service|$(MODULE)/core/agent$$|$(MODULE)/harness)'; then \
		echo "kubectl-meshcert links the packages above: the plugin reaches the CA through core/caclient and links no SDS server"; exit 1; fi
	@if $(GO) list -deps ./cmd/meshcert-ca ./cmd/meshcert-agent | grep -E '^$(MODULE)/(plugin|harness)'; then \
		echo "the CA or the agent links the packages above: in-cluster binaries link no plugin or harness code"; exit 1; fi
	cd harness/controlplane && $(GO) vet ./...
	cd harness/kindnode && $(GO) vet ./cmd/...

## demo: the main job: every scenario on the embedded local control plane.
demo: build kubectl
	@echo "==> [$$(date +%T)] running every scenario on the embedded control plane: about 4 minutes"
	$(BIN)/meshcert-harness run --provider local scenarios

## image: the in-cluster image (CA, agent, demo workload; static, FROM scratch), with docker build.
IMAGE ?= meshcert/meshcert:dev
image:
	@rm -rf $(BIN)/image && mkdir -p $(BIN)/image
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '-s -w $(LDFLAGS)' -o $(BIN)/image/ ./cmd/meshcert-ca ./cmd/meshcert-agent ./cmd/meshcert-workload
	docker build -q -t $(IMAGE) -f core/deploy/Dockerfile $(BIN)/image

## docker-up: install Debian's docker.io if missing and start dockerd if none answers (with the runc
## wrapper where the capability bounding set lacks CAP_SYS_RESOURCE); docker-down stops only that dockerd.
DOCKER_STATE ?= /var/lib/meshcert/docker
docker-up:
	CGO_ENABLED=0 $(GO) build -o $(BIN)/meshcert-runc ./cmd/meshcert-runc
	install -D -m 0755 $(BIN)/meshcert-runc $(DOCKER_STATE)/meshcert-runc
	harness/dockerhost/docker-up.sh $(DOCKER_STATE)/meshcert-runc $(DOCKER_STATE)
docker-down:
	harness/dockerhost/docker-down.sh $(DOCKER_STATE)

## kind-node-image: the kind node image, built offline and cached (skipped when its inputs are unchanged).
NODE_IMAGE       ?= meshcert/kind-node:v1.34.4
NODE_IMAGE_CACHE ?= /var/cache/meshcert/kind-node
kind-node-image:
	harness/kindnode/build-node-image.sh $(NODE_IMAGE) $(NODE_IMAGE_CACHE)

## e2e: every scenario on kind clusters, bound and legacy (needs docker-up and kind-node-image).
E2E_FLAGS ?=
e2e: build kubectl image
	$(BIN)/meshcert-harness run --provider kind --node-image $(NODE_IMAGE) --image $(IMAGE) $(E2E_FLAGS) scenarios

clean:
	rm -rf $(BIN) dist
