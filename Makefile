# scxcheck — see README.md. Everything is built static (CGO_ENABLED=0): the
# scxcheck binary and the suites' test binary double as the VM's /init.
export CGO_ENABLED := 0
export PATH := /usr/local/go/bin:$(PATH)

GO      ?= go
BIN     := bin/scxcheck
# Debian packages scxcheck needs, all from the machine's own release.
DEB_PKGS := qemu-system-x86 zstd clang-19 llvm-19 bpftool libbpf-dev lcov
# What building a kernel from source needs (scxcheck kernel build), also from
# the machine's own release. pahole comes separately: bookworm's is too old,
# so scxcheck fetches Debian trixie's into its cache (see README).
BUILD_DEB_PKGS := make gcc flex bison bc perl gzip binutils libelf-dev libssl-dev
# What make test-slow needs on top: a browser for the run report, lcov's
# genhtml for the coverage report's lcov.info.
TEST_DEB_PKGS := chromium lcov
ARGS    ?=

.PHONY: all build deps deps-build deps-test kernel run test test-slow vet bench clean generate check-generate

all: build

build:
	$(GO) build -trimpath -o $(BIN) ./cmd/scxcheck
	$(GO) build -trimpath -ldflags="-s -w" -o bin/scxcheck-agent ./cmd/scxcheck-agent

# install_missing installs those of the Debian packages $(1) that are
# missing, from the machine's own release; it never adds other suites to
# /etc/apt.
define install_missing
	@missing=$$(for p in $(1); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing:" $$missing; \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; \
	fi
endef

# deps installs what scxcheck needs.
deps:
	$(call install_missing,$(DEB_PKGS))

# deps-build installs what building a kernel needs.
deps-build:
	$(call install_missing,$(BUILD_DEB_PKGS))

# deps-test installs what make test-slow needs besides: headless Chromium,
# which renders the HTML run report (report TestSlowBrowser), and lcov,
# whose genhtml renders a coverage run's lcov.info (cmd/scxcheck
# TestSlowCoverage). make run does not need them.
deps-test:
	$(call install_missing,$(TEST_DEB_PKGS))

# kernel fetches the default kernel (Debian's, with sub-schedulers) and
# prints its path.
kernel: build
	@$(BIN) kernel fetch

# run: everything a new user needs, then all suites against the default kernel.
run: deps build
	$(BIN) run $(ARGS)

vet:
	$(GO) vet ./...
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); \
	[ -z "$$unformatted" ] || { echo "gofmt -w needed on: $$unformatted"; exit 1; }

# The newest kernel release scxcheck was developed against: its API
# generation (7.3, per-CPU capabilities) is the newest the fixtures know, so
# they are compiled against its BTF, and make test runs the suites on it as
# well as on the default kernel.
NEWEST_KERNEL := 7.3.4+deb13-cloud-amd64

# generate recompiles the BPF fixtures with bpf2go (clang-19) against a
# vmlinux.h dumped from the BTF of NEWEST_KERNEL into the cache (not
# committed: ~134k lines, tied to one kernel build). One build serves every
# generation: the loader drops what an older kernel lacks.
CACHE_DIR ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/scxcheck
generate: build
	@k=$$($(BIN) kernel fetch --version $(NEWEST_KERNEL)) && rel=$$(basename $$(dirname $$k)) && dir=$(CACHE_DIR)/btf/$$rel && \
	mkdir -p $$dir && { [ -s $$dir/vmlinux.h ] || { bpftool btf dump file $$k format c > $$dir/vmlinux.h.tmp && mv $$dir/vmlinux.h.tmp $$dir/vmlinux.h; }; } && \
	SCXCHECK_VMLINUX_H_DIR=$$dir $(GO) generate ./fixtures

# check-generate fails if the committed fixture objects are not what the
# sources compile to. clang-19 numbers BTF types differently depending on
# the directory it runs in, so an object whose bytes changed is compared by
# its canonical text (internal/objcanon: programs, maps, types by shape);
# one that only had its types renumbered is put back as committed.
check-generate: generate
	@$(GO) build -o bin/objcanon ./internal/objcanon/cmd/objcanon && \
	for o in $$(git diff --name-only -- 'fixtures/*.o'); do \
		git show ":$$o" > bin/committed.o && bin/objcanon bin/committed.o > bin/committed.txt && bin/objcanon $$o > bin/generated.txt || exit 1; \
		if cmp -s bin/committed.txt bin/generated.txt; then git checkout -- $$o; \
		else echo "$$o: compiles to a different program than the one committed:"; diff -u bin/committed.txt bin/generated.txt | head -40; fi; \
	done; \
	git diff --exit-code --stat -- fixtures || { echo "fixtures: committed objects differ from a fresh 'make generate'; commit the regenerated files"; exit 1; }

# test: the project's tests, then the suites: the behaviour labels on the
# default kernel and on NEWEST_KERNEL, two VMs at a time, and scxcheck's own
# fault matrix once. Specs labelled slow (the stopped-agent and full-disk
# faults) are left to test-slow.
test: deps build vet check-generate
	$(GO) test -count=1 $$($(GO) list ./... | grep -v /suites)
	$(BIN) run --procs 2 --label-filter='!slow && !fault' --kernel default --kernel $(NEWEST_KERNEL)
	$(BIN) run --label-filter='fault && !slow' --kernel default

# test-slow: end-to-end work too slow for every CI run, among it building
# Debian's kernel source with scxcheck's config and booting it
# (cmd/scxcheck TestSlowKernelBuild; tens of minutes on 2 cores), building
# its coverage kernel and checking which specs executed which lines
# (TestSlowCoverage; as long again the first time), and rendering the run
# report in headless Chromium.
test-slow: deps deps-build deps-test build
	SCXCHECK_SLOW=1 $(GO) test -count=1 -v -timeout 180m ./...

bench: build
	$(BIN) bench boot

clean:
	rm -rf bin
