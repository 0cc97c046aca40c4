# SPDX-License-Identifier: GPL-2.0
# The workbench's entry points. Everything it makes goes to build/.
#
#   make run        set up, build x86_64, boot it with both fault loops, run
#                   the tests, short summary
#   make check      every arch: build, boot (where QEMU can) and judge;
#                   table and "N passed, N failed"; non-zero exit on any
#                   failure
#
#   make setup      install the toolchain (idempotent)
#   make tree       assemble build/src: base + overlay + patches/series
#   make build      build one kernel and its initramfs (ARCH=, VARIANT=debug)
#   make boot       build, boot and judge one target (TARGET=<arch>,
#                   <arch>-rust or <arch>-rust-debug; default ARCH)
#   make lint       rustfmtcheck, CLIPPY=1 + W=1, rustdoc for one Rust arch (ARCH=)
#   make bench      cost per fault, C loop vs Rust loop, in one run
#                   (BENCH_ARCHES=, default every Rust arch)
#   make fault-trace  instructions of one fault per function, C vs Rust (ARCH=)
#   make refresh-patches   write build/src's commits back to patches/
#   make series     the mailing-list series in build/series/ (patches/export),
#                   checkpatch --strict
#   make series-bisect  build every prefix of the series for x86_64, Rust loop
#                   on and off (slow: not part of make check)
#   make clean      remove builds, logs and results (keeps the unpacked base)
#   make distclean  remove build/ entirely (the compiler cache stays, in
#                   ~/.cache/fault-retry)

# The variables given on the command line are for the scripts, which get
# them as arguments: the kernel builds they run must not inherit them.
MAKEOVERRIDES :=

ARCH ?= x86_64
VARIANT ?=
TARGET ?= $(ARCH)
WB := workbench
BUILD_NAME := $(ARCH)$(if $(VARIANT),-$(VARIANT))

.PHONY: run check setup tree build boot lint bench fault-trace refresh-patches series \
	series-bisect clean distclean

run:
	@$(WB)/check.sh --show x86_64 x86_64-rust

check:
	@$(WB)/check.sh

setup:
	@$(WB)/setup.sh

tree: setup
	@$(WB)/assemble.sh

build: tree
	@$(WB)/build.sh $(BUILD_NAME)

boot:
	@$(WB)/check.sh $(TARGET)

lint: build
	@$(WB)/lint.sh $(ARCH)

bench: tree
	@$(WB)/bench.sh $(BENCH_ARCHES)

fault-trace: tree
	@$(WB)/fault-trace.sh $(ARCH)

refresh-patches:
	@$(WB)/refresh-patches.sh

series: tree
	@python3 $(WB)/series.py

series-bisect: series
	@$(WB)/series-bisect.sh

clean:
	rm -rf build/out build/logs build/results

distclean:
	rm -rf build
