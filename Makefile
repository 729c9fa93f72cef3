# The few commands a person types. `make demo` runs the seeds' walkthrough on a
# throwaway home; `make test` runs every test. Both install what they need first.

CARGO        ?= cargo
WASM_TARGET  := wasm32-wasip2
S3S_FS       := target/tools/bin/s3s-fs
MLFLOW       := target/tools/mlflow/bin/mlflow
REGISTRY     := target/tools/registry/usr/bin/docker-registry
MARIADB      := /usr/sbin/mariadbd
CHROMEDRIVER := /usr/bin/chromedriver
FLAVORS_OUT  := target/$(WASM_TARGET)/release
EXAMPLES_OUT := $(abspath target/polyglot)

.PHONY: all setup flavors integrations examples build demo test servers schemathesis soak fuzz bench clean

all: build

## setup: install the wasm32-wasip2 target (the only thing Rust needs beyond cargo)
setup:
	@rustup target list --installed 2>/dev/null | grep -qx '$(WASM_TARGET)' || rustup target add wasm32-wasip2

## flavors: build the built-in flavors and the test fixtures for wasm32-wasip2
flavors: setup
	cd flavors && $(CARGO) build --release --locked

## integrations: the built-in integrations not written in Rust (the `webhook` alerter, in
##               JavaScript, with componentize-js from npm), embedded by `make build`
integrations:
	mkdir -p $(EXAMPLES_OUT)
	$(MAKE) -C flavors/webhook OUT=$(EXAMPLES_OUT)/webhook.wasm

## examples: the Python and JavaScript example flavors, with their toolchains from PyPI and npm
examples:
	mkdir -p $(EXAMPLES_OUT)
	$(MAKE) -C flavors/examples/python-alerter OUT=$(EXAMPLES_OUT)/py_alerter.wasm VENV=$(abspath target/tools/py)
	$(MAKE) -C flavors/examples/js-alerter OUT=$(EXAMPLES_OUT)/js_alerter.wasm

## build: the `strata` binary, with the built-in flavors and integrations embedded
build: flavors integrations
	$(CARGO) build --locked

## demo: the seeds' walkthrough, on a temporary STRATA_HOME
demo: build
	@scripts/demo.sh target/debug/strata

## bench: whole-command figures against /bin/true, one lifecycle call step by step
##        (criterion) against a native baseline, the daemon under load against its
##        /health route, the same flavor in Rust, Python and JavaScript, and the built-in
##        integrations against their real servers (64 MiB through s3 against boto3), and
##        pipelines (per-step overhead against a shell script, a 64 MiB artifact against cp;
##        release build), the team server over MariaDB (list, register; one and two
##        nodes) against the sled daemon, and the dashboard's stacks page with 1,000
##        components (server time against /health)
bench: flavors integrations examples servers
	$(CARGO) build --release --locked --bin strata --example loadgen --example teamload --example dashload
	scripts/bench.sh target/release/strata 20
	$(CARGO) bench --locked -p strata --bench lifecycle_call
	scripts/criterion_table.py lifecycle_call native_status --also empty_call_pooled \
	  "native_status=native Rust \`status\` (baseline)" \
	  "instantiate=instantiate (on-demand allocator: the CLI)" \
	  "instantiate_pooled=instantiate (pooling allocator: the daemon)" \
	  "empty_call=instantiate + call of an empty component" \
	  "empty_call_pooled=instantiate + call of an empty component, pooled (baseline)" \
	  "status=instantiate + \`status\`" \
	  "status_pooled=instantiate + \`status\`, pooled" \
	  "describe_with_status-describe_without_status=the same through the service (store reads, grants), pooled: the daemon's call" \
	  "cached_load=load from the verified compiled cache (a new engine)" \
	  "engine_start=of which: start an engine" \
	  "verify_cache_hash=of which: BLAKE3 of the compiled file" \
	  "cold_compile=compile (cold)"
	$(CARGO) bench --locked -p strata --bench net_get
	scripts/criterion_table.py net_get native_get --also native_get_mt \
	  "native_get=one GET, native Rust (hyper), new connection (baseline)" \
	  "native_get_mt=the same, from a synchronous caller on a multi-threaded runtime (baseline 2)" \
	  "call_with_get=a flavor call making one GET through the gate" \
	  "call_without_get=the same call making no request" \
	  "call_with_get-call_without_get=one GET through the gate, as the flavor pays for it"
	target/release/examples/loadgen target/release/strata 3
	target/release/examples/teamload target/release/strata 3
	target/release/examples/dashload target/release/strata 1000
	scripts/languages.sh target/release/strata
	scripts/services_bench.sh target/release/strata
	scripts/pipeline_bench.sh target/release/strata

## test: unit tests, the flavor SDK's tests, and the end-to-end suite (real binary, real .wasm)
##       twice: in-process, then with every home served by a real daemon on loopback
##       (but `flavor new` projects, which use neither, and the dashboard's browser walk,
##       which starts its own daemon either way), and schemathesis against a daemon;
##       the dashboard's tests drive Debian's Chromium (installed here with chromedriver)
test: build examples servers $(CHROMEDRIVER)
	scripts/with-mlflow.sh sh -c '$(CARGO) test --locked --workspace && \
	  STRATA_TEST_DAEMON=1 $(CARGO) test --locked --test it -- --skip flavor_new:: \
	    --skip dashboard::a_person_sees'
	cd flavors && $(CARGO) test --locked -p strata-flavor-sdk -p mlflow-tracker -p oci-registry -p s3-artifact-store --target $$(rustc -vV | sed -n 's/^host: //p')
	$(MAKE) -C flavors/webhook check OUT=$(EXAMPLES_OUT)/webhook.wasm
	scripts/schemathesis.sh target/debug/strata

## servers: the real servers flavors are tested against, installed once into target/tools/:
##          s3s-fs, an S3 server that checks SigV4 signatures (crates.io; ~2.5 min on 2 cores),
##          MLflow 3.17.2 (PyPI; ~1 min, 850 MB), Debian's docker-registry (apt-get download);
##          and Debian's mariadb-server for the team server (apt-get install, ~10 s: the
##          tests start private instances of it in temp directories, never the system's)
servers: $(S3S_FS) $(MLFLOW) $(REGISTRY) $(MARIADB)

$(S3S_FS):
	$(CARGO) install s3s-fs --version 0.14.1 --features binary --locked --root target/tools

$(MLFLOW):
	python3 -m venv --clear target/tools/mlflow
	target/tools/mlflow/bin/pip install --quiet --disable-pip-version-check mlflow==3.17.2

# Debian's packages the tests run, in one apt-get (two at once would fight over dpkg's
# lock): mariadb-server for the team server (installed: its libraries and data files are
# too many to unpack by hand; the tests only run its binaries with --no-defaults on their
# own data directories), and Chromium with its WebDriver for the dashboard's tests
# (~300 MB, ~40 s; started headless on loopback, in a new profile each time).
DEBIAN_PACKAGES := mariadb-server chromium chromium-driver
$(MARIADB) $(CHROMEDRIVER) &:
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(DEBIAN_PACKAGES) \
	  || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(DEBIAN_PACKAGES); }

# Unpacked, not installed: no system daemon is started, nothing outside target/ changes.
# After the apt-get above (an `apt-get update` of its own would wait on the same lock).
$(REGISTRY): | $(MARIADB)
	rm -rf target/tools/registry && mkdir -p target/tools/registry
	cd target/tools/registry && { apt-get download docker-registry 2>/dev/null \
	  || { apt-get update -qq && apt-get download docker-registry; }; } \
	  && dpkg -x docker-registry_*.deb . && rm docker-registry_*.deb

## schemathesis: the REST fuzzer (from PyPI) against a real daemon: every check, a fixed
##               seed, a bounded number of examples per operation; no failure allowed
schemathesis: build
	scripts/schemathesis.sh target/debug/strata

## soak: the crash test with 1,000 SIGKILL points instead of 200
soak: build
	STRATA_KILL_POINTS=1000 $(CARGO) test --locked --test it -- crash::sigkill --nocapture

## fuzz: property-based fuzzing of config parsing, secret references, records and export files (20,000 cases each)
fuzz: build
	PROPTEST_CASES=20000 $(CARGO) test --locked --test fuzz

clean:
	$(CARGO) clean
