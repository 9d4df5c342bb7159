# chronik-actor: `make run` starts a single node, `make test` runs every check.

GO ?= go

.PHONY: run build test kcat bench

# One node on 127.0.0.1:9092 with its data in ./data (the defaults, spelled
# out so the command line says what runs).
run:
	$(GO) run ./cmd/chronik-actor --data-dir ./data --kafka-addr 127.0.0.1:9092

build:
	$(GO) build -o bin/chronik-actor ./cmd/chronik-actor

# The kcat checks fail rather than skip without kcat, so install Debian's
# package first when it is missing (sudo only when not root and available).
kcat:
	@command -v kcat >/dev/null 2>&1 || { \
		sudo=; \
		if [ "$$(id -u)" != 0 ] && command -v sudo >/dev/null 2>&1; then sudo=sudo; fi; \
		echo "kcat missing: installing Debian's kcat package"; \
		$$sudo env DEBIAN_FRONTEND=noninteractive apt-get update && \
		$$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y kcat; \
	}

test: kcat
	$(GO) vet ./...
	$(GO) test -race -timeout 25m ./...

# The issue's workload: 1 KiB records, 6 partitions, acks=all, 30 s, run
# against an embedded broker and against kfake for comparison.
bench:
	$(GO) run ./cmd/chronik-actor bench produce --against kfake \
		--record-size 1024 --partitions 6 --acks all --duration 30s
