# fdbhook — build, test and demo entry points.
# Every target that needs system packages installs them itself (Debian).

GO       ?= go
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -s -w -X github.com/fdbhook/fdbhook/pkg/version.Version=$(VERSION)
BIN      := bin
export CGO_ENABLED = 0
export PATH := /usr/local/go/bin:$(PATH)

.PHONY: all build deps check unit integration fuzz e2e vm migration packages packages-test fleet \
        distro test demo demo-clean bench clean

all: build

build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/qemu-hook ./cmd/qemu-hook
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/network-hook ./cmd/network-hook
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/lxc-hook ./cmd/lxc-hook
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/fdbhook ./cmd/fdbhook

# Debian packages the unit and integration tests need.
deps:
	@test/deps.sh iproute2 file

# Static checks: formatting, vet (the product, and bench/, a module of its
# own over it), the documentation's figures (quoted from bench/results.md),
# and every command the README, the man page and the shipped configuration
# show, run against this tree's binaries (test/docs).
check:
	@fmt=$$(gofmt -l cmd pkg test bench); if [ -n "$$fmt" ]; then echo "gofmt: $$fmt"; exit 1; fi
	$(GO) vet ./...
	cd bench && $(GO) vet ./...
	@test/docs/figures.sh
	@test/deps.sh groff-base
	$(GO) test -count=1 ./test/docs/

# Pure tests: parsing, config, planning; and pkg/kernel read back against the
# netlink library in a throwaway network namespace (root; skipped otherwise).
unit:
	$(GO) test -count=1 ./pkg/... ./cmd/...

# Netlink tests, each in its own network namespace; needs root.
integration: build deps
	$(GO) test -count=1 -v ./test/lab/ ./test/integration/ ./test/features/ ./test/admin/

# Bounded fuzzing of the XML-to-plan path and the config parser.
fuzz:
	@test/fuzz.sh

# Real libvirtd end to end (installs libvirt and QEMU when missing).
e2e: build
	test/e2e/run.sh

# Debian's cloud kernel under qemu TCG: VLAN filtering, promiscuity, locked ports.
vm: build
	test/vm/run.sh

# Live migrations between two libvirt hosts on one machine (namespaces).
migration: build
	test/migration/run.sh

packages: build
	packaging/build.sh

# Builds, installs, upgrades and removes the .deb; runs the e2e suite against
# the installed package; checks the .rpm's contents and scripts.
packages-test: packages
	FDBHOOK_PKG_E2E=1 packaging/test.sh

# Fleet operation: alert rules (promtool), the metrics scraped by a real
# node_exporter and Prometheus from a libvirtd guest, the Ansible role.
fleet: packages
	test/fleet/run.sh

# The .deb on a stock Debian 13 host (systemd, AppArmor enforcing, Debian's
# libvirt) booted under qemu TCG from a cached image: install, guests,
# watcher, doctor, upgrade from the old link layout, remove, purge.
# FDBHOOK_DISTRO_SUITE=bookworm boots Debian 12 instead.
distro: packages
	test/distro/run.sh

# The whole suite, as CI runs it.
test: check unit integration fuzz vm migration packages-test fleet distro

demo: build
	test/e2e/demo.sh

demo-clean:
	test/e2e/demo.sh clean

bench: build
	bench/run.sh

clean:
	rm -rf $(BIN) dist
