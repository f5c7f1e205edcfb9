# pickup: `make run` starts the service on embedded defaults, `make test`
# runs every check CI runs.

GO      ?= go
export GOFLAGS ?= -buildvcs=false

.PHONY: run test lint vet fmt-check bench build

build:
	$(GO) build -o bin/pickup ./cmd/pickup

run:
	$(GO) run ./cmd/pickup

test: lint
	$(GO) test -race -timeout 30m ./...

lint: vet fmt-check

vet:
	$(GO) vet ./...

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

# Benchmarks print their figures; none of them is a pass/fail test.
bench:
	$(GO) test -run '^$$' -bench . -benchtime 1x ./eventlog/...
