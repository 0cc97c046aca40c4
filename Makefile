# SPDX-License-Identifier: GPL-2.0
# The workbench's entry points. Everything it makes goes to build/.
#
#   make run        set up, build x86_64, boot it, run the tests, short summary
#   make check      the same on x86_64, arm64, riscv64 and um; table and
#                   "N passed, N failed"; non-zero exit on any failure
#
#   make setup      install the toolchain (idempotent)
#   make tree       assemble build/src: base + overlay + patches/series
#   make build      build one kernel and its initramfs (ARCH=, VARIANT=)
#   make boot       build, boot and judge one kernel (ARCH=, VARIANT=)
#   make lint       rustfmtcheck, CLIPPY=1 + W=1, rustdoc for one kernel (ARCH=)
#   make bench      cost per fault, C loop vs Rust loop, in one run
#                   (BENCH_ARCHES=, default x86_64 arm64 riscv64 um)
#   make fault-trace  instructions of one fault per function, C vs Rust (ARCH=)
#   make refresh-patches   write build/src's commits back to patches/
#   make series     the mailing-list series in build/series/ (patches/export),
#                   checkpatch --strict
#   make series-bisect  build every prefix of the series for x86_64, Rust loop
#                   on and off (slow: not part of make check)
#   make clean      remove builds, logs and results (keeps the unpacked base)
#   make distclean  remove build/ entirely

ARCH ?= x86_64
VARIANT ?=
WB := workbench
TARGET := $(ARCH)$(if $(VARIANT),-$(VARIANT))

.PHONY: run check setup tree build boot lint bench fault-trace refresh-patches series \
	series-bisect clean distclean

run:
	@$(WB)/check.sh --show x86_64

check:
	@$(WB)/check.sh

setup:
	@$(WB)/setup.sh

tree: setup
	@$(WB)/assemble.sh

build: tree
	@$(WB)/build.sh $(ARCH) $(VARIANT)

boot:
	@$(WB)/check.sh $(TARGET)

lint: build
	@$(WB)/lint.sh $(ARCH) $(VARIANT)

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
