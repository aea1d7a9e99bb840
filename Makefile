# Zoe. `make run` builds everything and starts the daemon on examples/zoe.hcl;
# `make test` runs the whole test suite.

GO        ?= go
BIN       := bin
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -X main.version=$(VERSION)
# plugins/internal holds what Zoe's plugins share; every other directory is a plugin.
PLUGINS   := $(filter-out internal,$(notdir $(wildcard plugins/*)))
RUN_DIR   := .zoe

.PHONY: all build run test test-go test-swarm kube-bins kubelet-bins deps-kubelet test-kubelet test-images images test-images-analytics lint proto proto-check deps docker-engine fuzz bench clean

all: build

# -trimpath for every go command (build, vet, test, and the binaries the
# tests build): without it, Go's build cache keys each package of the
# module by the directory of its clone, so a fresh clone (as CI's, in a new
# directory each time) compiled every package of Zoe again, with and
# without the race detector, and vetted it again: 3.4 minutes of CPU of a
# make test of 15 here. The go env's own GOFLAGS are kept.
export GOFLAGS := $(strip $(shell $(GO) env GOFLAGS 2>/dev/null) -trimpath)

# Go decides what is stale; make just asks it every time.
# The core runs only plugins no one else can write, whatever the umask.
build:
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/zoe ./cmd/zoe
	@for p in $(PLUGINS); do echo "go build ./plugins/$$p"; \
	  $(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/zoe-plugin-$$p ./plugins/$$p || exit 1; done
	@chmod go-w $(BIN) $(BIN)/*

# The first run creates a users file with an admin and a random password,
# printed once; there is no default password. The shop's entries run the
# analytics images (make images: 7 minutes the first time, nothing after),
# examples/docker the test images.
run: build docker-engine test-images images
	@$(BIN)/zoe users-file init --if-missing $(RUN_DIR)/users.csv
	$(BIN)/zoe server -config examples/zoe.hcl

# Every step says what it does before it starts (step prints the line, with
# the time, so that a slow step shows which it is), and go test prints a
# line per package, in order; the first failing step fails make.
#
# The root module's tests leave the 2 cores of the machine this was measured
# on a third idle (they wait on Docker, daemons and the browser): lint and
# the tests of the other modules run beside them (lint niced, so that it
# takes only what the tests leave; the tests not, since starving them would
# outrun their hang bounds), their output kept in a file and printed after
# the root module's, so that its progress shows as it comes.
# make lint and make test-go still run each alone.
test: deps docker-engine proto-check
	@tmp=$$(mktemp -d) && trap 'rm -rf $$tmp; $(stop_dockerd)' EXIT && \
	  $(call step,lint and the tests of $(OTHER_MODULES) run in the background; their output follows); \
	  { nice -n 19 $(MAKE) -s lint > $$tmp/lint 2>&1; echo $$? > $$tmp/lint.rc; } & \
	  { $(MAKE) -s test-go MODULES="$(OTHER_MODULES)" > $$tmp/other 2>&1; echo $$? > $$tmp/other.rc; } & \
	  $(MAKE) -s test-go MODULES=.; rc=$$?; wait; \
	  cat $$tmp/lint $$tmp/other; \
	  if [ $$rc != 0 ] || [ "$$(cat $$tmp/lint.rc)" != 0 ] || [ "$$(cat $$tmp/other.rc)" != 0 ]; then \
	    $(call step,make test failed); exit 1; fi
	@$(call step,make test passed)

step = echo "== $$(date +%T) $(1)"

# A Docker engine that make test started (docker-engine, below) is stopped
# when it ends, so that the machine is left as it was found; but not while
# another make test runs its tests on it (it holds test-go's lock): the
# last one to end stops it.
test: DOCKERD_STARTED = $(TEST_CACHE)/dockerd.started
stop_dockerd = if [ -f $(DOCKERD_STARTED) ]; then \
  if ! flock -n $(TEST_CACHE)/root.lock true; then echo "another make test uses the Docker engine this one started: left running"; \
  else pid=$$(cat $(DOCKERD_STARTED)); rm -f $(DOCKERD_STARTED); \
  if [ "$$(cat /proc/$$pid/comm 2>/dev/null)" = dockerd ]; then $(call step,stopping the Docker engine make test started); \
  kill $$pid; for i in $$(seq 30); do kill -0 $$pid 2>/dev/null || break; sleep 1; done; fi; fi; fi

# The images the Docker back-end's tests and examples/docker run, built in
# the local engine without a registry: small FROM-scratch images of static
# Go programs (internal/testimages): an HTTP service, a job, a worker, and
# others.
test-images:
	$(GO) run ./internal/testimages/cmd/build

# The analytics images (images/README.md): zoe/python, zoe/dask-scheduler,
# zoe/dask-worker and zoe/notebook-dask, tagged bookworm-<images/VERSION>,
# built from Debian's packages on a Debian bookworm base made with
# debootstrap (installed from Debian when missing; run as root, with sudo
# when not root). An image whose recipe label matches images/ is not built
# again, so a second make images does nothing. make run and make test run
# it: the shop's entries run these images, and the tests run the shop
# (core/daemon's examples and analytics tests, the browser's).
images:
	@test -x /usr/sbin/debootstrap || { $(call step,images: installing debootstrap with apt-get); \
	  $(SUDO) apt-get -o DPkg::Lock::Timeout=600 update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq debootstrap >/dev/null; }
	@SUDO='$(SUDO)' images/build.sh

# Starts the analytics images as Zoe would, as uid 1000 with every
# capability dropped: a scheduler, two workers and a notebook that computes
# on them, Jupyter and the scheduler's pages under proxy prefixes
# (images/test/smoke.sh). Not part of make test yet.
test-images-analytics: images
	images/test/smoke.sh

# The SDK is a module of its own (sdk/go.mod), and so is the example
# third-party back-end, which depends on the SDK alone: ./... at the root
# stops at their boundaries, so every Go command runs once per module.
MODULES := . sdk examples/backend-localproc
OTHER_MODULES := $(filter-out .,$(MODULES))

# -count=1: results are never taken from the test cache, every run runs
# every test. Not after make build: the tests get the binaries they run
# from test-go (below) or build them (internal/testutil.Build).
# -p 8: most of the long packages wait on Docker, PostgreSQL, Chromium and
# daemons rather than compute (go test -p 2 kept 2 cores about half busy);
# 4 at once took the root module from 7m47s to 6m14s here, and 8 instead
# of 4 from 7m37s to 6m35s once the web pages' tests came.
# -timeout 20m: a hang still ends the run, but a package's tests on a
# machine loaded by other work (load average 30) outlast go test's 10
# minutes.
# RACE_SKIP: packages compiled without the race detector's instrumentation
# (the rest of the test binary keeps it): SQLite's C translated to Go
# (modernc.org), password hashing, and the standard library's elliptic-curve
# and hash arithmetic that go-plugin's mTLS runs at every plugin start. They
# are pure computation, or one goroutine's, with no synchronisation of their
# own that the detector would miss; instrumented they cost 3 times the CPU
# of the state store's tests (15 s against 4.4) and a fifth of the API's.
# Zoe's code and the rest of the standard library stay instrumented.
RACE_SKIP := modernc.org/... golang.org/x/crypto/... crypto/internal/...
RACE_FLAGS := -race $(foreach p,$(RACE_SKIP),-gcflags=$(p)=-race=false)

# -o: go test links every test binary again at each run (2 minutes of CPU
# of a make test of 14 here) unless it writes them to files, which it does
# not link again while they are up to date: they are kept in TEST_CACHE,
# outside the work tree and shared by every clone (the same binaries, with
# -trimpath), one make test at a time (a lock; it says when it waits).
# Only the packages with tests: go test -o refuses two packages of one name
# (the SDK's generated v1 packages), even without tests; lint builds the
# rest. -ldflags="-s -w": without the symbol table and DWARF, as go test links
# them when it runs them from its own directory (a quicker link; stack
# traces stay whole).
#
# The root module's tests need the analytics images (make images) and the
# control plane's binaries (make kube-bins): the first build of each takes
# minutes on a new machine, one mostly waiting on Debian's mirror and dpkg,
# the other compiling, so they are made side by side.
#
# The lock is fd 9 of test-go's shell alone: every command it starts gets
# 9>&-, since a process that inherited it would hold the lock after make
# test ends (a server a test started and a killed run left behind, such as
# the swarm tests' Docker engine, made every later make test wait for ever).
# TestNoLockInherited (internal/testutil) checks it.
#
# The root module's tests run zoe and its plugins as processes: they are
# built once here (into TEST_CACHE, so also linked only when changed), and
# internal/testutil.Build copies them from $$ZOE_TEST_PREBUILT instead of
# asking the go command in every package.
TEST_CACHE ?= $(HOME)/.cache/zoe-test

test-go:
	@mkdir -p $(TEST_CACHE) && exec 9>$(TEST_CACHE)/$(if $(filter .,$(MODULES)),root,other).lock && \
	{ flock -n 9 || { echo "waiting for another make test using $(TEST_CACHE)"; flock 9; }; } && \
	if [ "$(filter .,$(MODULES))" = . ]; then \
	  $(call step,images: make images beside kube-bins; its output follows theirs); \
	  { $(MAKE) -s images > $(TEST_CACHE)/images.log 2>&1 9>&-; echo $$? > $(TEST_CACHE)/images.rc; } & \
	  $(MAKE) -s kube-bins 9>&-; kube=$$?; wait; cat $(TEST_CACHE)/images.log; \
	  [ $$kube = 0 ] && [ "$$(cat $(TEST_CACHE)/images.rc)" = 0 ] || exit 1; \
	  export ZOE_TEST_KUBE=$(KUBE_BINS); \
	  $(call step,building zoe and its plugins for the tests); \
	  mkdir -p $(TEST_CACHE)/prebuilt && for p in cmd/zoe $(addprefix plugins/,$(PLUGINS)); do \
	    case $$p in cmd/zoe) n=zoe;; *) n=zoe-plugin-$${p#plugins/};; esac; \
	    $(GO) build -o $(TEST_CACHE)/prebuilt/$$n ./$$p 9>&- || exit 1; done; \
	  export ZOE_TEST_PREBUILT=$(TEST_CACHE)/prebuilt; fi; \
	for m in $(MODULES); do $(call step,go test -race ./... in $$m); \
	  pkgs=$$(cd $$m && $(GO) list -f '{{if or .TestGoFiles .XTestGoFiles}}{{.ImportPath}}{{end}}' ./...); \
	  mkdir -p $(TEST_CACHE)/bin/$$m && \
	  (cd $$m && $(GO) test $(RACE_FLAGS) -count=1 -p 8 -timeout 20m -ldflags="-s -w" -o $(TEST_CACHE)/bin/$$m/ $$pkgs 9>&-) || exit 1; done

# The Kubernetes back-end's tests run a real control plane on 127.0.0.1
# (internal/testutil/kube.go): etcd, kube-apiserver, kube-controller-manager,
# kube-scheduler and kwok (fake nodes), built from the Go modules pinned in
# internal/kubebins (see its README). The build takes about 10 minutes of
# 2 cores, so it is kept in TEST_CACHE under a key of the three go.mod files
# and of the stage list: a version bump builds again, an unchanged tree never.
# It builds into a temporary directory renamed at the end, so a killed build
# leaves nothing half-made, under a lock, so two makes do not both build.
# test-go builds them (once) before the root module's tests and tells them
# where with $$ZOE_TEST_KUBE.
# KWOK_STAGES are kwok's stage files (of its module) the fake nodes and
# pods follow: nodes Ready (their leases renewed, their status every 10
# minutes), pods Running at once, a Job's pods Succeeded, pods labelled for
# it Failed, nodes labelled for it NotReady, deleted pods gone. The tests
# add a stage of their own for bare pods' exits
# (internal/testutil/kube_stages.yaml). KWOK_CRDS are kwok's custom
# resources the tests install: Logs, which says which file kwok serves as a
# pod's log.
KUBE_MODULES := internal/kubebins/kubernetes internal/kubebins/etcd internal/kubebins/kwok
KWOK_STAGES := node/fast/node-initialize.yaml node/heartbeat-with-lease/node-heartbeat-with-lease.yaml \
  pod/fast/pod-ready.yaml pod/fast/pod-complete.yaml pod/fast/pod-delete.yaml \
  pod/chaos/pod-container-running-failed.yaml node/chaos/node-not-ready.yaml
KWOK_CRDS := kwok.x-k8s.io_logs.yaml
KUBE_KEY := $(shell { cat $(addsuffix /go.mod,$(KUBE_MODULES)); echo $(KWOK_STAGES) $(KWOK_CRDS); } 2>/dev/null | sha256sum | cut -c1-16)
KUBE_BINS := $(TEST_CACHE)/kube/$(KUBE_KEY)
KUBE_CMDS := kube-apiserver kube-controller-manager kube-scheduler

kube-bins:
	@if [ -d $(KUBE_BINS) ]; then echo "kube-bins: up to date in $(KUBE_BINS)"; exit 0; fi; \
	mkdir -p $(TEST_CACHE)/kube && exec 9>$(TEST_CACHE)/kube/lock && \
	{ flock -n 9 || { echo "kube-bins: waiting for another make building them"; flock 9; }; } && \
	if [ -d $(KUBE_BINS) ]; then echo "kube-bins: up to date in $(KUBE_BINS)"; exit 0; fi; \
	rm -rf $(TEST_CACHE)/kube/.tmp-*; \
	tmp=$$(mktemp -d $(TEST_CACHE)/kube/.tmp-$(KUBE_KEY)-XXXXXX) && trap 'rm -rf $$tmp' EXIT && trap 'exit 1' HUP INT TERM && \
	cd internal/kubebins/kubernetes && v=$$($(GO) list -m -f '{{.Version}}' k8s.io/kubernetes) && \
	  mm=$${v#v} && minor=$${mm#*.} && \
	  ldf="-s -w"; for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do \
	    ldf="$$ldf -X $$p.gitVersion=$$v -X $$p.gitMajor=$${mm%%.*} -X $$p.gitMinor=$${minor%%.*} -X $$p.gitTreeState=clean"; done && \
	  $(call step,kube-bins: building $(KUBE_CMDS) $$v (about 10 minutes of 2 cores the first time)) && \
	  $(GO) build -ldflags "$$ldf" -o $$tmp/ $(addprefix k8s.io/kubernetes/cmd/,$(KUBE_CMDS)) && \
	cd ../etcd && v=$$($(GO) list -m -f '{{.Version}}' go.etcd.io/etcd/server/v3) && \
	  $(call step,kube-bins: building etcd $$v) && \
	  $(GO) build -ldflags "-s -w" -o $$tmp/etcd go.etcd.io/etcd/server/v3 && \
	cd ../kwok && v=$$($(GO) list -m -f '{{.Version}}' sigs.k8s.io/kwok) && \
	  $(call step,kube-bins: building kwok $$v and copying its stages and CRDs) && \
	  $(GO) build -ldflags "-s -w" -o $$tmp/kwok sigs.k8s.io/kwok/cmd/kwok && \
	  src=$$($(GO) list -m -f '{{.Dir}}' sigs.k8s.io/kwok)/kustomize && mkdir $$tmp/stages $$tmp/crds && \
	  for s in $(KWOK_STAGES); do install -m 644 $$src/stage/$$s $$tmp/stages/ || exit 1; done && \
	  for s in $(KWOK_CRDS); do install -m 644 $$src/crd/bases/$$s $$tmp/crds/ || exit 1; done && \
	chmod 755 $$tmp && mv -T $$tmp $(KUBE_BINS) && \
	$(call step,kube-bins: built in $(KUBE_BINS))

# make test-kubelet (not part of make test: it needs root, and it adds a
# network device, a bridge and a containerd of its own to the machine for
# a few minutes): the Kubernetes back-end on a real node, a kubelet with
# containerd's CRI beside the tests' control plane, running the test images
# as real containers (internal/testutil/kubelet.go). The kubelet and
# containerd are built from their own modules, internal/kubebins/kubelet
# (the same k8s.io/kubernetes as internal/kubebins/kubernetes, checked
# here) and internal/kubebins/containerd (Debian's containerd 1.6 cannot
# run the back-end's pods: see its go.mod), into a directory of their own
# in TEST_CACHE under a key of their go.mod files, so that make kube-bins,
# which make test runs, keeps its key and cost.
KUBELET_MODULES := internal/kubebins/kubelet internal/kubebins/containerd
KUBELET_KEY := $(shell cat $(addsuffix /go.mod,$(KUBELET_MODULES)) 2>/dev/null | sha256sum | cut -c1-16)
KUBELET_BINS := $(TEST_CACHE)/kubelet/$(KUBELET_KEY)
KUBELET_TESTS := -run 'Kubelet' ./plugins/backend-k8s/...

kubelet-bins:
	@if [ -d $(KUBELET_BINS) ]; then echo "kubelet-bins: up to date in $(KUBELET_BINS)"; exit 0; fi; \
	mkdir -p $(TEST_CACHE)/kubelet && exec 9>$(TEST_CACHE)/kubelet/lock && \
	{ flock -n 9 || { echo "kubelet-bins: waiting for another make building them"; flock 9; }; } && \
	if [ -d $(KUBELET_BINS) ]; then echo "kubelet-bins: up to date in $(KUBELET_BINS)"; exit 0; fi; \
	rm -rf $(TEST_CACHE)/kubelet/.tmp-*; \
	tmp=$$(mktemp -d $(TEST_CACHE)/kubelet/.tmp-$(KUBELET_KEY)-XXXXXX) && trap 'rm -rf $$tmp' EXIT && trap 'exit 1' HUP INT TERM && \
	v0=$$(cd internal/kubebins/kubernetes && $(GO) list -m -f '{{.Version}}' k8s.io/kubernetes) && \
	cd internal/kubebins/kubelet && v=$$($(GO) list -m -f '{{.Version}}' k8s.io/kubernetes) && \
	  if [ "$$v" != "$$v0" ]; then echo "internal/kubebins/kubelet requires k8s.io/kubernetes $$v, internal/kubebins/kubernetes $$v0: bump both"; exit 1; fi && \
	  mm=$${v#v} && minor=$${mm#*.} && \
	  ldf="-s -w"; for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do \
	    ldf="$$ldf -X $$p.gitVersion=$$v -X $$p.gitMajor=$${mm%%.*} -X $$p.gitMinor=$${minor%%.*} -X $$p.gitTreeState=clean"; done && \
	  $(call step,kubelet-bins: building kubelet $$v) && \
	  nice $(GO) build -ldflags "$$ldf" -o $$tmp/kubelet k8s.io/kubernetes/cmd/kubelet && \
	cd ../containerd && v=$$($(GO) list -m -f '{{.Version}}' github.com/containerd/containerd/v2) && \
	  $(call step,kubelet-bins: building containerd $$v with its runc shim and ctr) && \
	  CGO_ENABLED=0 nice $(GO) build -tags no_btrfs -ldflags "-s -w -X github.com/containerd/containerd/v2/version.Version=$$v" -o $$tmp/ \
	    $(addprefix github.com/containerd/containerd/v2/cmd/,containerd containerd-shim-runc-v2 ctr) && \
	chmod 755 $$tmp && mv -T $$tmp $(KUBELET_BINS) && \
	$(call step,kubelet-bins: built in $(KUBELET_BINS))

# What the real node needs from Debian, installed only when missing: runc
# (the shim of kubelet-bins' containerd runs it), the CNI plugins (bridge, loopback,
# host-local, in /usr/lib/cni), iproute2 (the node's address is on a veth
# device) and iptables (the pods' bridge forwards between its ports despite
# Docker's FORWARD policy). The test images come from the local Docker
# engine, which the rest of the tests need too.
deps-kubelet:
	@$(call step,deps-kubelet: runc and the CNI plugins and iproute2 and iptables from Debian when missing)
	@pkgs=; \
	  command -v runc >/dev/null || pkgs="$$pkgs runc"; \
	  test -x /usr/lib/cni/bridge && test -x /usr/lib/cni/loopback && test -x /usr/lib/cni/host-local || pkgs="$$pkgs containernetworking-plugins"; \
	  command -v ip >/dev/null || pkgs="$$pkgs iproute2"; \
	  command -v iptables >/dev/null || pkgs="$$pkgs iptables"; \
	  if [ -z "$$pkgs" ]; then echo "all present: nothing to install"; exit 0; fi; \
	  echo "installing with apt-get:$$pkgs"; \
	  $(SUDO) apt-get -o DPkg::Lock::Timeout=600 update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq $$pkgs >/dev/null

# Run as root (the kubelet and containerd need it); ZOE_TEST_KUBELET tells
# the tests where the kubelet is, and that they are asked to run: without
# it they are skipped, so make test (which runs as root in CI) leaves them.
test-kubelet: deps-kubelet kube-bins kubelet-bins
	@$(call step,go test $(KUBELET_TESTS) with a real kubelet)
	ZOE_TEST_KUBE=$(KUBE_BINS) ZOE_TEST_KUBELET=$(KUBELET_BINS) $(GO) test -count=1 -timeout 15m -v $(KUBELET_TESTS)

# The swarm back-end's tests alone (make test runs them too; as root: they
# start a swarm-mode dockerd of their own in a network namespace).
test-swarm:
	$(GO) test $(RACE_FLAGS) -count=1 -timeout 20m ./plugins/backend-swarm/...

# staticcheck is a tool of the root module only (a tool line in sdk/go.mod
# would become a requirement of every plugin): go tool -n builds it and prints
# its path, and that binary checks the SDK's module too. go mod tidy -diff
# keeps sdk/go.mod to what the SDK imports: each line of it is required by
# every plugin.
lint:
	@$(call step,gofmt -l)
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	@$(call step,building staticcheck (go tool -n staticcheck; the version go.mod pins))
	@sc=$$($(GO) tool -n staticcheck) && for m in $(MODULES); do \
	  $(call step,go mod tidy -diff in $$m); (cd $$m && $(GO) mod tidy -diff) || exit 1; \
	  $(call step,go vet ./... in $$m); (cd $$m && $(GO) vet ./...) || exit 1; \
	  $(call step,staticcheck ./... in $$m); (cd $$m && $$sc ./...) || exit 1; done

# What the tests need besides Go, from Debian, installed only when missing
# (with sudo when not root): gcc, since go test -race needs cgo; protoc, for
# proto-check (the Go generators are pinned in go.mod); PostgreSQL, since the
# state store's tests start a throwaway server from its binaries
# (internal/testutil/postgres.go); slapd and ldap-utils, since the ldap auth
# plugin's tests start an OpenLDAP server (internal/testutil/slapd.go), and
# krb5-kdc, krb5-admin-server and libsasl2-modules-gssapi-mit a Kerberos KDC
# and slapd's GSSAPI for its SASL test (internal/testutil/kdc.go);
# Chromium, since the web pages' tests drive a headless browser
# (internal/testutil/browser.go; 164 MB, once per machine).
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

deps:
	@$(call step,deps: gcc and protoc and PostgreSQL and slapd and a Kerberos KDC and Chromium from Debian when missing)
	@pkgs=; \
	  command -v gcc >/dev/null || { echo "gcc missing: go test -race needs cgo"; pkgs="$$pkgs gcc libc6-dev"; }; \
	  command -v protoc >/dev/null || { echo "protoc missing: proto-check regenerates sdk/proto with it"; pkgs="$$pkgs protobuf-compiler"; }; \
	  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { echo "PostgreSQL missing: the state store's tests start a server"; pkgs="$$pkgs postgresql"; }; \
	  test -x /usr/sbin/slapd && command -v ldapadd >/dev/null || { echo "slapd missing: the ldap auth plugin's tests start an OpenLDAP server"; pkgs="$$pkgs slapd ldap-utils"; }; \
	  test -x /usr/sbin/krb5kdc && test -x /usr/sbin/kadmin.local && ls /usr/lib/*/sasl2/libgssapiv2.so* >/dev/null 2>&1 || { echo "Kerberos missing: the ldap auth plugin's GSSAPI test starts a KDC"; pkgs="$$pkgs krb5-kdc krb5-admin-server libsasl2-modules-gssapi-mit"; }; \
	  test -x /usr/lib/chromium/chromium || command -v chromium >/dev/null || { echo "Chromium missing: the web pages' tests drive a headless browser"; pkgs="$$pkgs chromium"; }; \
	  if [ -z "$$pkgs" ]; then echo "all present: nothing to install"; exit 0; fi; \
	  echo "installing with apt-get:$$pkgs"; \
	  $(SUDO) apt-get -o DPkg::Lock::Timeout=600 update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq $$pkgs >/dev/null

# Most of the root module's tests run containers on the machine's Docker
# engine. One installed but not running (a session's processes end before
# CI, and an engine restarted by hand ends with them: CI once failed at
# once on "Cannot connect to the Docker daemon") is started here when make
# runs as root, its log in TEST_CACHE (and stopped at the end of make test;
# make run leaves it running); one that does not answer in 30 s
# (Docker 20.10's libnetwork can deadlock) stops make test with that reason
# instead of hanging the tests.
docker-engine:
	@$(call step,docker-engine: the Docker engine answers (started when installed and not running))
	@out=$$(timeout 30 docker info --format '{{.ServerVersion}}' 2>&1); rc=$$?; \
	  if [ $$rc = 0 ]; then echo "Docker engine $$out answers"; exit 0; fi; \
	  if [ $$rc = 124 ]; then echo "the Docker engine did not answer docker info in 30 s: it is hung; restart it"; exit 1; fi; \
	  case "$$out" in *"Cannot connect"*) ;; *) echo "docker info: $$out"; exit 1;; esac; \
	  command -v dockerd >/dev/null || { echo "no Docker engine answers and dockerd is not installed: install Docker Engine"; exit 1; }; \
	  [ "$$(id -u)" = 0 ] || { echo "no Docker engine answers: start it (sudo service docker start)"; exit 1; }; \
	  mkdir -p $(TEST_CACHE) && echo "no Docker engine answers: starting dockerd, its log in $(TEST_CACHE)/dockerd.log"; \
	  setsid dockerd >> $(TEST_CACHE)/dockerd.log 2>&1 < /dev/null & \
	  $(if $(DOCKERD_STARTED),echo $$! > $(DOCKERD_STARTED);) \
	  for i in $$(seq 60); do sleep 1; timeout 10 docker info >/dev/null 2>&1 && { echo "dockerd answers after $$i s"; exit 0; }; done; \
	  echo "dockerd did not answer in 60 s; the end of its log:"; tail -20 $(TEST_CACHE)/dockerd.log; exit 1

proto: deps
	scripts/protogen.sh

# Fails when the committed generated code is not what the .proto files give
# (the line naming protoc's version aside, so that another protoc compares).
proto-check: deps
	@$(call step,proto-check: sdk/proto against what protoc makes of the .proto files)
	@tmp=$$(mktemp -d) && trap 'rm -rf $$tmp' EXIT && scripts/protogen.sh $$tmp && \
	  for f in $$(cd $$tmp && find . -name '*.go'); do \
	    diff -q -I '^// .*protoc  *v[0-9.]*$$' $$tmp/$$f sdk/proto/$$f >/dev/null || { echo "sdk/proto/$$f is stale: run make proto"; exit 1; }; \
	  done && \
	  for f in $$(cd sdk/proto && find . -name '*.pb.go'); do \
	    test -f $$tmp/$$f || { echo "sdk/proto/$$f has no .proto: remove it"; exit 1; }; \
	  done && echo "generated code is up to date"

fuzz:
	$(GO) test -run '^$$' -fuzz FuzzParse -fuzztime 60s ./plugins/auth-file/userfile
	$(GO) test -run '^$$' -fuzz FuzzDecodeRequests -fuzztime 60s ./core/api
	$(GO) test -run '^$$' -fuzz FuzzParsePath -fuzztime 60s ./core/proxy

# The state store's benchmark fills 100,000 executions per store (a few
# minutes); ZOE_BENCH_EXECUTIONS=2000 make bench for a quick run.
bench: build
	$(GO) test -run '^$$' -bench . -benchtime 3s ./core/pluginhost
	$(GO) test -run '^$$' -bench . -benchmem ./core/zapp
	$(GO) test -run '^$$' -bench . -timeout 60m ./core/state
	$(GO) test -run '^$$' -bench ProxyOverhead -benchtime 5s ./core/proxy

clean:
	rm -rf $(BIN)
