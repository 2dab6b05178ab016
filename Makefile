# numabuddy - top-level build. `make` builds the module and user space; `make test` runs the
# hosted tests and the VM suite; `make demo` boots a 2-node VM and shows the pools at work.
# Every target that needs packages runs scripts/deps.sh first (a no-op once installed).

# The kernel to build for: the one Debian's linux-headers-amd64 metapackage points at, so a
# Debian ABI bump needs no edit here. Override with KVER=... or KDIR=...
KVER ?= $(shell scripts/kver.sh)
KDIR ?= /lib/modules/$(KVER)/build
BUILD ?= $(CURDIR)/build
V ?= 0
# Each kernel gets its own copy of the module sources to build in: objects of one kernel
# can never be linked into another's module, and the source tree stays free of outputs.
MODDIR := $(BUILD)/module/$(KVER)
KO := $(MODDIR)/numabuddy.ko

export KVER KO

.PHONY: all deps module userspace check-symbols test test-hosted test-vm test-dkms demo \
	dkms-install dkms-uninstall install bench fuzz test-kernels test-debug clean help

all: module userspace

help:
	@sed -n 's/^## //p' $(MAKEFILE_LIST)

deps:
	@scripts/deps.sh

## module        build numabuddy.ko for KVER (default: Debian's current kernel)
module: deps
	@mkdir -p $(MODDIR)
	@rsync -a --delete --exclude='*.o' --exclude='.*.cmd' --exclude='*.ko' \
		--exclude='*.mod*' --exclude='*.order' --exclude=Module.symvers \
		Kbuild module mm_core uapi scripts $(MODDIR)/
	$(MAKE) -C $(KDIR) M=$(MODDIR) V=$(V) modules
	@$(MAKE) --no-print-directory check-symbols

## check-symbols the C++ core, linked alone, may only need env functions and mem*
check-symbols:
	@scripts/check-core-symbols.sh $(MODDIR)/mm_core

## userspace     libnumabuddy, the numabuddy CLI, and the in-VM test programs
userspace: deps
	$(MAKE) -C userspace BUILD=$(BUILD)/userspace all static vmtest

## test          everything CI runs: hosted unit tests, sanitizers, fuzz smoke, VM suite,
##               and the VM suites on the debug kernel (built once per machine, then cached)
test: test-hosted test-vm test-debug

## test-hosted   mm_core and library tests on the host (ASan+UBSan, TSan, thread-safety, fuzz)
test-hosted: deps
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
	scripts/demo.sh

## dkms-install  register, build and install the module with DKMS for the installed kernels
dkms-install: deps
	scripts/dkms.sh install

dkms-uninstall:
	scripts/dkms.sh uninstall

## test-kernels  the VM suite on every supported kernel (6.1, 6.12, 6.12-rt)
test-kernels: userspace
	scripts/test-kernels.sh

## bench         benchmarks against the kernel's page allocator in a 4-node VM
bench: module userspace
	scripts/bench.sh

## fuzz          the long fuzz run (core fuzzer and in-VM ioctl fuzzer)
fuzz: module userspace
	scripts/fuzz.sh

## ko-path       print where `make module` put numabuddy.ko for KVER
ko-path:
	@echo $(KO)

clean:
	rm -rf $(BUILD)
