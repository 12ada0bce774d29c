# rbac-proxy — build, test and demo. Everything a target needs is built into
# bin/ (git-ignored) by the targets themselves; nothing is installed by hand.

SHELL        := /usr/bin/env bash -o pipefail
.SHELLFLAGS  := -ec
ROOT         := $(abspath .)
BIN          := $(ROOT)/bin
VERSION      ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
GO           ?= go
# The tools modules are built with their own go.sum; never let a stray
# GOFLAGS=-mod=vendor or similar from the environment change that.
export GOFLAGS := -buildvcs=false
export CGO_ENABLED := 0

KUBE_VERSION := v1.37.1
KUBE_LDFLAGS := -s -w \
	-X k8s.io/component-base/version.gitVersion=$(KUBE_VERSION) \
	-X k8s.io/component-base/version.gitMajor=1 \
	-X k8s.io/component-base/version.gitMinor=37 \
	-X k8s.io/component-base/version.gitTreeState=clean \
	-X k8s.io/client-go/pkg/version.gitVersion=$(KUBE_VERSION)
HELM_VERSION := v3.22.0
LDFLAGS      := -s -w -X github.com/rbac-proxy/rbac-proxy/internal/version.Version=$(VERSION)

TEST_TIMEOUT ?= 40m

KUBE_TOOLS   := $(BIN)/kube-apiserver $(BIN)/kube-controller-manager $(BIN)/kube-scheduler $(BIN)/kubelet $(BIN)/etcd
CM_TOOLS     := $(BIN)/cert-manager-controller $(BIN)/cert-manager-crds/.stamp
TOOLS        := $(KUBE_TOOLS) $(CM_TOOLS) $(BIN)/helm

export KUBEBUILDER_ASSETS := $(BIN)

.PHONY: all
all: build

.PHONY: help
help: ## Show the targets.
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

##@ Build

.PHONY: build
build: ## Build rbac-proxy and rbac-proxy-injector (static) into bin/.
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/rbac-proxy ./cmd/proxy
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/rbac-proxy-injector ./cmd/webhook

.PHONY: manifests
manifests: $(BIN)/helm ## Render the chart with default values into deploy/ (for users without Helm).
	@mkdir -p deploy
	@{ echo "# The rbac-proxy-injector chart rendered with its default values (make manifests)."; \
	   echo "# Install: kubectl create namespace rbac-proxy && kubectl apply -n rbac-proxy -f deploy/rbac-proxy-injector.yaml"; \
	   $(BIN)/helm template rbac-proxy charts/rbac-proxy-injector --namespace rbac-proxy; } > deploy/rbac-proxy-injector.yaml

.PHONY: image
image: build ## Build the images as docker-archive tarballs into bin/images/ (no Docker): rbac-proxy, and the tests' sample exporter, sandbox and Prometheus.
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/rbac-proxy-sample-dcgm-exporter ./test/images/exporter
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/rbac-proxy-pause ./test/images/pause
	$(GO) run ./internal/image/build -bin $(BIN) -out $(BIN)/images -version $(VERSION)

.PHONY: docker-image
docker-image: ## Build the rbac-proxy image from the Dockerfile (needs a Docker engine).
	docker build --build-arg VERSION=$(VERSION) -t rbac-proxy:$(VERSION) .

##@ Demo

.PHONY: demo
demo: tools test-deps ## Run the whole story on a local control plane and a real node: chart, injected exporter Pods, scrapes, summary.
	$(GO) run ./test/demo

##@ Test

.PHONY: tools
tools: $(TOOLS) ## Build the test control plane and helm into bin/ (only what is missing).

.PHONY: test
# test-deps before image: the Prometheus image is Debian's prometheus package.
test: tools test-deps image ## Run every test: unit and end to end on a real control plane.
	$(GO) test -count=1 -timeout $(TEST_TIMEOUT) ./...

.PHONY: test-deps
# The real node's runtime (containerd, runc, the CNI plugins) and the Prometheus
# that scrapes it come from Debian.
TEST_PACKAGES := iproute2 containerd runc containernetworking-plugins prometheus
test-deps: ## System packages the tests use: iproute2, and containerd, runc, CNI plugins and Prometheus for the real node.
	@missing=$$(for p in $(TEST_PACKAGES); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then echo ">> installing" $$missing; apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; fi

.PHONY: test-unit
test-unit: ## Run the tests that need no control plane.
	$(GO) test -count=1 ./proxy/... ./webhook/... ./cmd/...

##@ Benchmarks

.PHONY: bench
bench: bench-proxy bench-fleet bench-webhook ## Run every benchmark; figures and ratios measured in the same run.

.PHONY: bench-proxy
bench-proxy: tools ## rbac-proxy vs the direct upstream vs kube-rbac-proxy v0.19.1, and API calls per burst.
	$(GO) run ./test/bench/proxy

.PHONY: bench-fleet
bench-fleet: tools ## 1,000 in-process node proxies, a Prometheus of 1 and 10 identities: reviews/s the API server receives, steady and after a restart (15 min).
	$(GO) run ./test/bench/fleet -identities 1 -scale 20
	$(GO) run ./test/bench/fleet -identities 10 -scale 6 -modes review,local

.PHONY: bench-webhook
bench-webhook: tools ## Admission latency p50/p99 in-process, Pods/s with and without the webhook, Pod created → Secret ready.
	$(GO) test -count=1 -run '^$$' -bench 'Admission|CreatePods' -benchtime 5000x ./test/bench/webhook
	$(GO) test -count=1 -run '^$$' -bench PodToSecret -benchtime 20x ./test/bench/webhook

.PHONY: lint
lint: ## gofmt on every Go file, go vet on the module.
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

.PHONY: lint-tools
lint-tools: ## go vet on the tools modules too (slow: type-checks kubernetes and cert-manager).
	cd test/tools/kube && $(GO) vet ./...
	cd test/tools/certmanager && $(GO) vet ./...

# The control plane and the node: kube-apiserver, kube-controller-manager,
# kube-scheduler and the kubelet from k8s.io/kubernetes, etcd from
# go.etcd.io/etcd/server — one tools module.
$(KUBE_TOOLS) &: test/tools/kube/go.mod test/tools/kube/go.sum test/tools/kube/cmd/etcd/main.go
	@echo ">> building kube-apiserver, kube-controller-manager, kube-scheduler, kubelet and etcd $(KUBE_VERSION) (first time: 15-25 minutes)"
	cd test/tools/kube && $(GO) build -trimpath -ldflags '$(KUBE_LDFLAGS)' -o $(BIN)/ \
		k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
		k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubelet ./cmd/etcd
	@touch $(KUBE_TOOLS)

$(BIN)/cert-manager-controller: $(wildcard test/tools/certmanager/*.go) test/tools/certmanager/go.mod test/tools/certmanager/go.sum
	@echo ">> building the cert-manager controller (first time: a few minutes)"
	cd test/tools/certmanager && $(GO) build -trimpath -ldflags '-s -w' -o $@ .

$(BIN)/cert-manager-crds/.stamp: $(BIN)/cert-manager-controller
	rm -rf $(BIN)/cert-manager-crds && mkdir -p $(BIN)/cert-manager-crds
	$(BIN)/cert-manager-controller crds $(BIN)/cert-manager-crds
	@touch $@

$(BIN)/helm:
	@echo ">> building helm $(HELM_VERSION)"
	GOBIN=$(BIN) $(GO) install helm.sh/helm/v3/cmd/helm@$(HELM_VERSION)

.PHONY: clean
clean: ## Remove bin/ (the next test run rebuilds the control plane).
	rm -rf $(BIN)
