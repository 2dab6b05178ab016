# numabuddy - top-level build. `make` builds the module and user space; `make test` runs the
# hosted tests and the VM suite; `make demo` boots a 2-node VM and shows the pools at work.
#
# Two passes. The first installs the packages the goals need (scripts/deps.sh, a no-op once
# installed) and runs make again; the second does the work. Everything computed from the
# installed packages (KVER, and the build directory named after it) is computed by the
# second pass only, so a fresh machine gets the same answer as one that has the packages.

# Package set of each goal (scripts/deps.sh); goals not listed need none.
deps_all := build
deps_module := build
deps_userspace := build
deps_check-symbols := build
deps_ko-path := build
deps_demo := demo
deps_fuzz := demo
deps_test := test
deps_test-hosted := test
deps_test-vm := test
deps_test-dkms := test
deps_test-kernels := test
deps_test-debug := test
deps_bench := bench
deps_dkms-install := dkms
deps_deb := deb
deps_test-install := deb
deps_deps := all

ifeq ($(NB_DEPS_DONE),)

goals := $(or $(MAKECMDGOALS),all)
sets := $(sort $(foreach g,$(goals),$(deps_$(g))))
.PHONY: $(goals)
# The first goal installs and re-runs make for all of them; the others have nothing to do.
$(firstword $(goals)):
	@$(if $(sets),scripts/deps.sh $(sets))
	@$(MAKE) --no-print-directory NB_DEPS_DONE=1 $(goals)
$(filter-out $(firstword $(goals)),$(goals)):
	@:

else

# The kernel to build for: the one Debian's linux-headers-amd64 metapackage points at, so a
# Debian ABI bump needs no edit here. Override with KVER=... or KDIR=...
# Goals that work without any kernel headers (clean, help) do not ask.
ifneq ($(filter-out clean help deps dkms-uninstall deb test-install,$(or $(MAKECMDGOALS),all)),)
ifeq ($(origin KVER),undefined)
KVER := $(shell scripts/kver.sh)
endif
ifeq ($(KVER),)
$(error cannot tell the kernel version: no kernel headers installed (make deps))
endif
endif
KDIR ?= /lib/modules/$(KVER)/build
BUILD ?= $(CURDIR)/build
V ?= 0
# Each kernel gets its own copy of the module sources to build in: objects of one kernel
# can never be linked into another's module, and the source tree stays free of outputs.
MODDIR := $(BUILD)/module/$(KVER)
KO := $(MODDIR)/numabuddy.ko
# A kernel whose headers only the trixie root has (Debian 13's 6.12, trixie-backports' 7.x:
# they need trixie's gcc) is built inside that root, by scripts/in-root.sh: its build tree
# is the root's /nb/module/KVER, and build/module/KVER links to it.
TROOT := $(BUILD)/trixie/root
IN_ROOT := $(if $(wildcard $(KDIR)/Makefile),,$(wildcard $(TROOT)/usr/src/linux-headers-$(KVER)/Makefile))

export KVER KO

.PHONY: all deps module userspace check-symbols test test-hosted test-vm demo \
	dkms-install dkms-uninstall deb test-install install bench fuzz test-kernels test-debug clean help

all: module userspace

help:
	@sed -n 's/^## //p' $(MAKEFILE_LIST)

## deps          install every package any target needs (each target installs its own)
deps:
	@:

## module        build numabuddy.ko for KVER (default: Debian's current kernel)
module:
ifneq ($(IN_ROOT),)
	@mkdir -p $(TROOT)/nb/module/$(KVER) $(BUILD)/module
	@ln -sfn $(TROOT)/nb/module/$(KVER) $(MODDIR)
endif
	@mkdir -p $(MODDIR)
	@rsync -a --delete --exclude='*.o' --exclude='.*.cmd' --exclude='*.ko' \
		--exclude='*.mod*' --exclude='*.order' --exclude=Module.symvers \
		Kbuild module mm_core uapi scripts $(MODDIR)/
ifneq ($(IN_ROOT),)
	scripts/in-root.sh make -C /lib/modules/$(KVER)/build M=/nb/module/$(KVER) V=$(V) modules
else
	$(MAKE) -C $(KDIR) M=$(MODDIR) V=$(V) modules
endif
	@$(MAKE) --no-print-directory check-symbols

## check-symbols the C++ core, linked alone, may only need env functions and mem*
# Objects of the current sources only: rsync keeps a renamed file's old object.
check-symbols:
	@scripts/check-cxx-object.sh --core $(patsubst %.cpp,%.o,$(wildcard $(MODDIR)/mm_core/*.cpp))

## userspace     libnumabuddy, the numabuddy CLI, and the in-VM test programs
userspace:
	$(MAKE) -C userspace BUILD=$(BUILD)/userspace all static vmtest

## test          everything CI runs: hosted unit tests, sanitizers, fuzz smoke, VM suite,
##               and the VM suites on the debug kernel (built once per machine, then cached)
test: test-hosted test-vm test-debug

## test-hosted   mm_core and library tests on the host (ASan+UBSan, TSan, thread-safety, fuzz)
test-hosted:
	scripts/test-hosted.sh

## test-vm       the VM suite on the 2node, 4node and cpuless topologies, and the DKMS build
test-vm: module userspace
	scripts/test-vm.sh

## test-debug    the VM suites on a KASAN/lockdep/DEBUG_VM kernel built from Debian's source
##               (scripts/debug-kernel.sh; ~1 h on 2 cores the first time, cached after)
test-debug: deps
	scripts/test-debug.sh

## demo          boot a 2-node VM, load the module, show per-node pools and allocations
demo: module userspace
	scripts/demo-vm.sh

## dkms-install  register, build and install the module with DKMS for the installed kernels
dkms-install:
	scripts/dkms.sh install

dkms-uninstall:
	scripts/dkms.sh uninstall

## deb           Debian packages in build/deb/: numabuddy-dkms, libnumabuddy2, libnumabuddy-dev,
##               numabuddy-tools (dpkg-buildpackage on a copy of the tree; lintian errors fail)
DEBDIR := $(BUILD)/deb
deb:
	@rm -rf $(DEBDIR) && mkdir -p $(DEBDIR)/src
	@git ls-files -z -c -o --exclude-standard | rsync -a --from0 --files-from=- ./ $(DEBDIR)/src/
	cd $(DEBDIR)/src && dpkg-buildpackage -b --no-sign >../build.log 2>&1 || \
		{ tail -n 30 $(DEBDIR)/build.log; exit 1; }
	lintian --fail-on error --tag-display-limit 0 $(DEBDIR)/*.changes >$(DEBDIR)/lintian.log 2>&1; \
		rc=$$?; grep -v 'root privileges' $(DEBDIR)/lintian.log; exit $$rc
	@ls -1 $(DEBDIR)/*.deb

## test-install  the debs, then the make-based install, in a fresh Debian 12 root: DKMS, the
##               README example through pkg-config, both booted in a VM, then purged
test-install: deb
	scripts/fresh-machine.sh $$(for d in $(DEBDIR)/*.deb; do echo --copy $${d#$(CURDIR)/}; done) \
		--run 'scripts/install-test.sh $(patsubst $(CURDIR)/%,%,$(DEBDIR))'

## test-kernels  the VM suite on every supported kernel: Debian 12's 6.1, 6.12, 6.12-rt; Debian
##               13's 6.12 and trixie-backports' kernel and its -rt (built in build/trixie/root)
test-kernels: userspace
	scripts/test-kernels.sh

## bench         benchmarks against the kernel's page allocator in a 4-node VM
bench: module userspace
	scripts/bench-vm.sh

## fuzz          the long fuzz run (core fuzzer and in-VM ioctl fuzzer)
fuzz: module userspace
	scripts/fuzz-vm.sh

## ko-path       print where `make module` put numabuddy.ko for KVER
ko-path:
	@echo $(KO)

clean:
	rm -rf $(BUILD)

endif
