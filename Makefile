# pickup: `make run` starts the service on embedded defaults, `make test`
# runs every check CI runs, on a fresh clone, installing what it needs.

GO      ?= go
export GOFLAGS ?= -buildvcs=false
export CHECKPOINT_DISABLE = 1

# Tools the tests run as real servers, installed into .tools/bin with the
# versions pinned here.
TOOLS        := $(CURDIR)/.tools/bin
VERSITYGW    := github.com/versity/versitygw/cmd/versitygw@v1.8.0
WAZERO       := github.com/tetratelabs/wazero/cmd/wazero@v1.12.0
# kubo, for the end-to-end benchmark's origin and the path pickup replaces,
# and for the end-to-end test that imports what pickup serves: built once
# per version by scripts/build-kubo.sh.
KUBO         := v0.43.1
# ipfs-cluster's own CLI, which tests/clusterctl_test.go runs against the
# ipfs-cluster routes: built once per version by
# scripts/build-ipfs-cluster-ctl.sh (1-3 minutes cold).
CLUSTERCTL   := v1.1.6
# The AWS Lambda Runtime Interface Emulator, which the deployment test
# (terraform/deploy_test.go) runs the Lambda's bootstrap under: served by
# the module proxy only as this pseudo-version; built once by
# scripts/build-lambda-rie.sh (~15 s).
LAMBDA_RIE   := v0.0.0-20261030222936-bef5c4ba774d
# The IPNI indexer, which serve/ipni's tests run as the real counterpart of
# pickup's advertisements: built once per version by
# scripts/build-storetheindex.sh (`go install` of it fails; ~2 min cold).
STORETHEINDEX := v0.8.38
# The container image: ko puts pickup on a base crane makes from this
# machine's files (scripts/build-image.sh); no Docker engine, no registry.
KO_VERSION    := v0.19.1
CRANE_VERSION := v0.22.1
# go test runs wasip1 binaries through the runner script in GOROOT's
# lib/wasm, which calls wazero.
export PATH  := $(TOOLS):$(shell $(GO) env GOROOT)/lib/wasm:$(PATH)

# Packages that must build and pass their tests under WebAssembly.
WASM_PKGS    := ./api/... ./gateway/...

.PHONY: run build test lint vet fmt-check tools chromium kubo cluster-ctl storetheindex lambda-rie bench image image-tools lambda wasm

build:
	$(GO) build -o bin/pickup ./cmd/pickup

run:
	$(GO) run ./cmd/pickup run

# The Lambda zip is built once per run, before the tests (a cold arm64
# build took 5 min 21 s on a loaded 2-core machine), and only when missing
# or older than the sources; TestLambdaPackage checks that very file
# (PICKUP_LAMBDA_ZIP) and the deployment test runs the images' binary
# (PICKUP_IMAGE).
#
# The end-to-end tests (./tests, which need kubo: tests/serve_test.go imports
# what pickup serves into it) run beside the package tests: kubo is built
# first (4-11 minutes cold, seconds once .tools/ or Go's cache has it), then
# they run while the package tests do; their output is printed after the
# package tests'. A cold run took 27 minutes to the end of the package tests
# alone, the terraform package's 9 minutes last.
test: lint tools wasm image bin/lambda.zip
	@( $(MAKE) --no-print-directory $(TOOLS)/ipfs > .tools/kubo-build.log 2>&1 || \
	     { echo "building kubo failed:"; cat .tools/kubo-build.log; exit 1; }; \
	   PICKUP_IMAGE=$(CURDIR)/bin/image $(GO) test -race -count=1 -timeout 30m ./tests/... \
	) > .tools/e2e.log 2>&1 & e2e=$$!; \
	PICKUP_LAMBDA_ZIP=$(CURDIR)/bin/lambda.zip PICKUP_IMAGE=$(CURDIR)/bin/image \
		$(GO) test -race -timeout 45m $$($(GO) list ./... | grep -v '/tests$$'); rc=$$?; \
	wait $$e2e; e2e_rc=$$?; \
	echo "--- the end-to-end tests (./tests), run beside the package tests:"; cat .tools/e2e.log; \
	[ $$rc = 0 ] && [ $$e2e_rc = 0 ]
	@[ -n "$$PICKUP_ESDB_URL" ] || echo "*** SKIPPED: the EventStoreDB conformance suite (eventlog/esdb) did not run: no server; set PICKUP_ESDB_URL (e.g. esdb://127.0.0.1:2113?tls=false) to run it ***"

# The end-to-end tests (./tests) build and run the pickup binary, which go
# test's cache does not see: they always run (-count=1).

# The API's wire types and client and the gateway's core are WASM-clean:
# they pass their tests under wasip1 (run by wazero; SQLite's WAL needs
# dot-file locks there) and build for js.
wasm: $(TOOLS)/wazero
	GOOS=wasip1 GOARCH=wasm GOWASIRUNTIME=wazero $(GO) test -tags sqlite3_dotlk $(WASM_PKGS)
	GOOS=js GOARCH=wasm $(GO) build $(WASM_PKGS)

lint: vet fmt-check

# vet builds what it checks as the image does (static, -trimpath), and so
# do the end-to-end tests their pickup binary: make test compiles pickup's
# dependencies once for the three (a cold build of them is minutes).
vet:
	CGO_ENABLED=0 $(GO) vet -trimpath ./...

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

tools: $(TOOLS)/versitygw $(TOOLS)/wazero $(TOOLS)/ipfs-cluster-ctl $(TOOLS)/storetheindex $(TOOLS)/aws-lambda-rie chromium

# Debian's chromium, for the status page's browser test (tests/ui_test.go).
chromium:
	./scripts/install-chromium.sh

$(TOOLS)/versitygw:
	GOBIN=$(TOOLS) $(GO) install $(VERSITYGW)

$(TOOLS)/wazero:
	GOBIN=$(TOOLS) $(GO) install $(WAZERO)

cluster-ctl: $(TOOLS)/ipfs-cluster-ctl

$(TOOLS)/ipfs-cluster-ctl:
	GO=$(GO) ./scripts/build-ipfs-cluster-ctl.sh $(TOOLS)/ipfs-cluster-ctl $(CLUSTERCTL)

storetheindex: $(TOOLS)/storetheindex

# The script rebuilds when the stamp beside the binary names another version.
$(TOOLS)/storetheindex: FORCE
	@GO=$(GO) ./scripts/build-storetheindex.sh $(TOOLS)/storetheindex $(STORETHEINDEX)

lambda-rie: $(TOOLS)/aws-lambda-rie

# The script rebuilds when the stamp beside the binary names another version.
$(TOOLS)/aws-lambda-rie: FORCE
	@GO=$(GO) ./scripts/build-lambda-rie.sh $(TOOLS)/aws-lambda-rie $(LAMBDA_RIE)

FORCE:

# 4-11 minutes cold; the script skips when the binary already runs $(KUBO).
kubo: $(TOOLS)/ipfs

$(TOOLS)/ipfs:
	GO=$(GO) ./scripts/build-kubo.sh $(TOOLS)/ipfs $(KUBO)

# Benchmarks print their figures; none of them is a pass/fail test.
bench: tools $(TOOLS)/ipfs
	PICKUP_BENCH_LONG=$(LONG) $(GO) test -run '^$$' -bench . -benchtime 1x -timeout 60m ./...

# The container image for the Fargate roles, linux/amd64 and linux/arm64:
# bin/image/oci (an OCI layout) and bin/image/digest. 2-4 minutes the first
# time on 2 cores, seconds after (ko's cache is .tools/ko). Push it with
# `crane push bin/image/oci REPO:TAG` (README, Deploying). make test's
# TestImage (tests/image_test.go) runs its binary and builds it again to
# compare digests.
image: image-tools
	./scripts/build-image.sh bin/image

# ko and crane at the versions above, installed again when the binary
# there reports another.
image-tools:
	@$(TOOLS)/ko version 2>/dev/null | grep -qx '$(KO_VERSION)' || \
		GOBIN=$(TOOLS) $(GO) install github.com/google/ko@$(KO_VERSION)
	@$(TOOLS)/crane version 2>/dev/null | grep -qx '$(CRANE_VERSION)' || \
		GOBIN=$(TOOLS) $(GO) install github.com/google/go-containerregistry/cmd/crane@$(CRANE_VERSION)

# The Lambda deployment package: bin/lambda.zip with a linux/arm64 bootstrap,
# rebuilt when a Go source (not a test), go.mod, go.sum or the script is
# newer.
LAMBDA_SRC := $(shell find . -name '*.go' -not -name '*_test.go' -not -path './.tools/*' -not -path './bin/*' -not -path './.git/*') \
	go.mod go.sum scripts/build-lambda.sh terraform/cmd/lambdazip/main.go

lambda: bin/lambda.zip

bin/lambda.zip: $(LAMBDA_SRC)
	./scripts/build-lambda.sh bin/lambda.zip
