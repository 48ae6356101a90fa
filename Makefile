# tiergate: the two front-door commands are `make demo` and `make test`.
GO ?= go

.PHONY: test build bench demo fuzz clean

## test: vet, then every test with the race detector (needs PostgreSQL server binaries; see .ci/run)
test:
	$(GO) vet ./...
	$(GO) test -race -count=1 ./...

## build: build bin/edge, bin/dbproxy, bin/demo and bin/webapp
build:
	mkdir -p bin
	$(GO) build -o bin/ ./cmd/... ./examples/webapp

## bench: side-by-side benchmarks (edge vs HAProxy/nginx, dbproxy vs PgBouncer), ~15 min;
##        writes bench/results/*.json and *.svg (see bench/README.md). BENCH_FLAGS=-smoke for a quick check.
BENCH_FLAGS ?=
bench:
	$(GO) run ./bench $(BENCH_FLAGS)

## demo: the whole design on one machine; Ctrl-C stops it. LOAD=1 drives traffic.
demo: build
	@./scripts/ensure-postgres
	./bin/demo -bin bin $(if $(LOAD),-load,) $(DEMO_FLAGS)

clean:
	rm -rf bin
