# chronik-actor: `make run` starts a single node, `make test` runs every check.

GO ?= go

.PHONY: run build test fuzz kcat kafkajs txn-tests kgo-suite bench bench-txn bench-cluster cluster cluster-stop

# One node on 127.0.0.1:9092 with its data in ./data (the defaults, spelled
# out so the command line says what runs).
run:
	$(GO) run ./cmd/chronik-actor --data-dir ./data --kafka-addr 127.0.0.1:9092

build:
	$(GO) build -o bin/chronik-actor ./cmd/chronik-actor

# A local 3-node cluster (cluster.example.toml: Kafka on 9092-9094), each
# node a background process logging to data/nodeN.log, its pid in
# data/nodeN.pid. `make cluster-stop` sends SIGTERM (a graceful stop that
# hands leadership over first).
cluster: build
	@mkdir -p data
	@for n in 1 2 3; do \
		bin/chronik-actor --config cluster.example.toml --node-id $$n > data/node$$n.log 2>&1 & \
		echo $$! > data/node$$n.pid; \
		echo "node $$n: pid $$(cat data/node$$n.pid), log data/node$$n.log"; \
	done

cluster-stop:
	@for n in 1 2 3; do \
		[ -f data/node$$n.pid ] && kill -TERM $$(cat data/node$$n.pid) 2>/dev/null; rm -f data/node$$n.pid; \
	done; true

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

# The kafkajs check (testkit/kafkajs_test.go) fails rather than skips
# without testkit/kafkajs/node_modules, so install the locked packages
# (package-lock.json) first when they are missing. Needs Node.js and npm.
kafkajs:
	@[ -f testkit/kafkajs/node_modules/kafkajs/package.json ] || { \
		command -v npm >/dev/null 2>&1 || { echo "npm is not on PATH: install Node.js (v18+) for the kafkajs check"; exit 1; }; \
		echo "kafkajs missing: npm ci in testkit/kafkajs"; \
		cd testkit/kafkajs && npm ci --no-audit --no-fund; \
	}

# ./... includes the transaction checks (testkit/txn_*_test.go) and
# franz-go's own kgo integration tests (testkit/kgosuite: a child
# `go test github.com/twmb/franz-go/pkg/kgo` against one node and three).
test: kcat kafkajs
	$(GO) vet ./...
	$(GO) test -race -timeout 25m ./...
	$(MAKE) fuzz

# The transaction checks alone (issue 9): franz-go, GroupTransactSession,
# kafkajs, the timeout, and the coordinator SIGKILLed on 3 processes.
txn-tests: kafkajs
	$(GO) test -race -count=1 -timeout 15m -run '^TestTxn' -v ./testkit/

# franz-go's kgo integration tests against chronik-actor (one node, then
# three); CHRONIK_KGO_LOG_LEVEL=info shows the kgo clients' logs.
kgo-suite:
	$(GO) test -count=1 -timeout 25m -run '^TestKgoSuite$$' -v ./testkit/kgosuite/

# Each fuzz target for a short while (the inputs that broke anything once
# stay in the packages' testdata/fuzz and run with every go test).
FUZZTIME ?= 10s
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzBrokerFrames$$' -fuzztime $(FUZZTIME) ./actors/
	$(GO) test -run '^$$' -fuzz '^FuzzParseRequest$$' -fuzztime $(FUZZTIME) ./protocol/
	$(GO) test -run '^$$' -fuzz '^FuzzValidateProduceBatch$$' -fuzztime $(FUZZTIME) ./protocol/

# The issue's workload: 1 KiB records, 6 partitions, acks=all, 30 s, run
# against an embedded broker and against kfake for comparison.
bench:
	$(GO) run ./cmd/chronik-actor bench produce --against kfake \
		--record-size 1024 --partitions 6 --acks all --duration 30s

# Transactions of 100 records against plain produce on one node, and
# against kfake's transactions, in one run.
bench-txn:
	$(GO) run ./cmd/chronik-actor bench produce --compare single+txn,single,kfake+txn \
		--record-size 1024 --partitions 6 --acks all --duration 30s

# The same workload against an embedded 3-node cluster (RF 3), a single
# node and kfake, one after the other in one run.
bench-cluster:
	$(GO) run ./cmd/chronik-actor bench produce --nodes 3 --compare cluster,single,kfake \
		--record-size 1024 --partitions 6 --acks all --compression none --duration 30s
