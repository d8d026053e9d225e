# Signet. `make run` starts a complete dev instance; `make test` runs every test
# against real PostgreSQL. Both install what they need when run as root on
# Debian, or name the exact package otherwise.

GO        ?= go
BIN       := bin
TEST_TIMEOUT ?= 15m
# Debian package that provides initdb and pg_ctl.
PG_PACKAGE := postgresql

.PHONY: all build run test vet fuzz deps test-deps clean bench bench-replicas cosign rekor-cli litewitness omniwitness image-check rules-check deploy-check

all: build

build:
	$(GO) build -o $(BIN)/ ./cmd/...

## deps: make sure the PostgreSQL server binaries (initdb, pg_ctl), openssl,
## SoftHSM2 (the PKCS#11 token the tests use), Debian's docker-registry (a
## registry without the OCI referrers API, for the image tests), gcc (cgo:
## the PKCS#11 binding; with binutils' readelf for image-check) and promtool
## (Debian's prometheus package: the alert rules' checks) exist.
deps:
	@if ! command -v initdb >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
			echo "installing $(PG_PACKAGE) (PostgreSQL server binaries)"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(PG_PACKAGE) >/dev/null; \
		else \
			echo "PostgreSQL server binaries not found: run 'sudo apt-get install $(PG_PACKAGE)' (tests can use an existing server through DATABASE_URL)"; exit 1; \
		fi; \
	fi
	@for pair in openssl:openssl softhsm2-util:softhsm2 docker-registry:docker-registry gcc:gcc readelf:binutils promtool:prometheus; do \
		cmd=$${pair%%:*}; pkg=$${pair##*:}; \
		if ! command -v $$cmd >/dev/null 2>&1; then \
			if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
				echo "installing $$pkg"; \
				apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$pkg >/dev/null || exit 1; \
			else \
				echo "$$cmd not found: run 'sudo apt-get install $$pkg'"; exit 1; \
			fi; \
		fi; \
	done

## test-deps: what only the tests need: Debian's Chromium, which the browser
## tests drive headless (the dev issuer's sign-in pages, signet's and cosign's
## interactive logins), and the signing tools whose signatures the log's
## entries are tested with (minisign, GnuPG, OpenSSH's ssh-keygen, rpmbuild and
## rpmsign, the JDK's jar, keytool and jarsigner).
test-deps: deps
	@for pair in chromium:chromium minisign:minisign gpg:gnupg ssh-keygen:openssh-client rpmbuild:rpm jarsigner:openjdk-17-jdk-headless; do \
		cmd=$${pair%%:*}; pkg=$${pair##*:}; \
		if ! command -v $$cmd >/dev/null 2>&1; then \
			if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
				echo "installing $$pkg (for the tests)"; \
				apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$pkg >/dev/null || exit 1; \
			else \
				echo "$$cmd not found: run 'sudo apt-get install $$pkg'"; exit 1; \
			fi; \
		fi; \
	done

## run: start signet-server in dev mode on 127.0.0.1:8080 with state in ./.signet
run: deps build
	$(BIN)/signet-server dev

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))" || { echo "gofmt needed:"; gofmt -l .; exit 1; }
	$(GO) vet ./...

## test: vet, then every test (PostgreSQL is started per test binary under /tmp).
## Unmodified cosign, rekor-cli and the witnesses (litewitness with witnessctl,
## omniwitness) are installed when missing, best effort: their
## interoperability tests skip (and say so) if they could not be built.
test: test-deps vet image-check rules-check deploy-check
	@command -v cosign >/dev/null 2>&1 || "$$($(GO) env GOPATH)/bin/cosign" version 2>/dev/null | grep -q "GitVersion: *$(COSIGN_VERSION)$$" || $(MAKE) cosign || echo "cosign could not be installed; its interoperability tests will skip"
	@command -v rekor-cli >/dev/null 2>&1 || "$$($(GO) env GOPATH)/bin/rekor-cli" version 2>/dev/null | grep -q "GitVersion: *$(REKOR_CLI_VERSION)$$" || $(MAKE) rekor-cli || echo "rekor-cli could not be installed; its interoperability tests will skip"
	@{ command -v litewitness && command -v witnessctl && command -v omniwitness; } >/dev/null 2>&1 || { gobin="$$($(GO) env GOPATH)/bin"; test -x "$$gobin/litewitness" && test -x "$$gobin/witnessctl" && test -x "$$gobin/omniwitness"; } || $(MAKE) litewitness || echo "litewitness or omniwitness could not be installed; the witness tests will skip"
	$(GO) test -timeout $(TEST_TIMEOUT) ./...

## image-check: run deploy/Dockerfile's build command outside Docker (no engine
## here) and check the binary suits the image: cgo, glibc only, runs.
image-check:
	scripts/image-check.sh

## deploy-check: the deployment artefacts' tests (deploy/*_test.go): the
## compose file loaded by the Compose specification's loader and its services'
## commands run; the Helm chart rendered for each kind of values into
## manifests the Kubernetes API types accept, linted, and its containers'
## commands run. A module of its own: compose-go, Helm and the Kubernetes
## libraries stay out of the server's dependencies.
deploy-check:
	cd deploy && $(GO) vet ./... && $(GO) test -timeout $(TEST_TIMEOUT) ./...

## rules-check: the Prometheus alert rules are valid and fire as their unit
## tests say (deploy/prometheus/alerts_test.yaml).
rules-check:
	promtool check rules deploy/prometheus/alerts.yaml
	cd deploy/prometheus && promtool test rules alerts_test.yaml

## fuzz: run each fuzz target briefly (FUZZTIME=1m for longer)
FUZZTIME ?= 15s
fuzz:
	@set -e; grep -rl --include='*_test.go' '^func Fuzz' . | xargs -n1 dirname | sort -u | while read -r pkg; do \
	  for f in $$(grep -h '^func Fuzz' $$pkg/*_test.go | sed 's/func \(Fuzz[A-Za-z0-9_]*\).*/\1/'); do \
	    echo "== $$pkg $$f"; $(GO) test $$pkg -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME); \
	  done; \
	done

## bench: start a throwaway dev instance and load it (BENCH_MODE=fast|full)
bench: deps build
	scripts/bench.sh

## bench-replicas: only the replicas part of make bench (1, 2, 3 replicas on
## one PostgreSQL; the leader killed under appends)
bench-replicas: deps build
	scripts/bench-replicas.sh

## cosign: install unmodified cosign v3.1.3 for the interoperability tests
## (it builds from the module proxy; the test skips when cosign is absent)
COSIGN_VERSION ?= v3.1.3
cosign:
	GOTOOLCHAIN=local $(GO) install github.com/sigstore/cosign/v3/cmd/cosign@$(COSIGN_VERSION)

## rekor-cli: install unmodified rekor-cli v1.5.3 (the Rekor release our entry
## kinds are byte-compatible with) for the interoperability tests
REKOR_CLI_VERSION ?= v1.5.3
rekor-cli:
	GOTOOLCHAIN=local $(GO) install github.com/sigstore/rekor/cmd/rekor-cli@$(REKOR_CLI_VERSION)

## litewitness: install the real, independent c2sp.org/tlog-witness
## implementations the witness tests cosign against: litewitness and
## witnessctl (filippo.io/torchwood), and transparency-dev's omniwitness, which
## also takes ECDSA-signed (Rekor v1) checkpoints. There is no version
## subcommand: make test only checks they are present. make omniwitness is
## the same.
LITEWITNESS_VERSION := v0.6.1
OMNIWITNESS_VERSION := v0.0.0-20260720115447-2e1c6971d19e
litewitness:
	GOTOOLCHAIN=local $(GO) install filippo.io/torchwood/cmd/litewitness@$(LITEWITNESS_VERSION) filippo.io/torchwood/cmd/witnessctl@$(LITEWITNESS_VERSION)
	GOTOOLCHAIN=local $(GO) install github.com/transparency-dev/witness/cmd/omniwitness@$(OMNIWITNESS_VERSION)
omniwitness: litewitness

clean:
	rm -rf $(BIN)
