# kvmrun: `make demo` boots the example guest, `make test` runs the tests, `make check` lints and
# type-checks, `make bench` measures.
# Everything missing is installed first: nasm/binutils/gcc with apt-get, Python packages in .venv.
PYTHON ?= python3
VENV ?= .venv
BUILD ?= build
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
KVMRUN := $(VENV)/bin/kvmrun

all: guests

demo: $(VENV)/.installed guests
	$(KVMRUN) boot $(BUILD)/guests/hello64.elf

test: $(VENV)/.installed guests
	KVMRUN_GUESTS=$(BUILD)/guests $(VENV)/bin/python -m pytest $(PYTEST_ARGS)

# Lint and types: ruff (pyflakes and pycodestyle rules) and mypy over the package; CI runs it.
check: $(VENV)/.installed
	$(VENV)/bin/ruff check kvmrun tests bench fuzz
	$(VENV)/bin/mypy

soak: $(VENV)/.installed guests
	KVMRUN_GUESTS=$(BUILD)/guests $(VENV)/bin/python -m pytest -m soak $(PYTEST_ARGS)

bench: $(VENV)/.installed guests
	@command -v qemu-system-x86_64 >/dev/null && [ -x /usr/bin/time ] || { \
		echo "installing qemu-system-x86 and time with apt-get (the comparison)"; \
		$(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq qemu-system-x86 time; }
	KVMRUN_GUESTS=$(BUILD)/guests $(VENV)/bin/python bench/run.py $(BENCH_ARGS)

# The BIOS ROM ships assembled (kvmrun needs no nasm at run time); after editing rom.asm, `make rom`.
# tests/test_bios_rom.py fails while rom.bin is stale.
rom: tools
	nasm -f bin -o kvmrun/bios/rom.bin kvmrun/bios/rom.asm

FUZZ_SECONDS ?= 60
fuzz: $(VENV)/.installed guests
	$(VENV)/bin/pip install -q atheris
	mkdir -p $(BUILD)/fuzz-corpus
	cp $(BUILD)/guests/*.elf $(BUILD)/guests/*.bin $(BUILD)/fuzz-corpus/
	$(VENV)/bin/python fuzz/fuzz_loaders.py -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
		$(BUILD)/fuzz-corpus
	$(VENV)/bin/python fuzz/fuzz_gdb.py -max_total_time=$(FUZZ_SECONDS) -max_len=4096 -print_final_stats=1

guests: tools
	$(MAKE) -C guests BUILD=$(abspath $(BUILD))/guests

# The assembler, linker and C compiler the guests are built with, and GNU time (the tests measure
# peak memory with it), from the distribution.
tools:
	@missing=""; \
	command -v nasm >/dev/null || missing="$$missing nasm"; \
	command -v ld >/dev/null || missing="$$missing binutils"; \
	command -v gcc >/dev/null || missing="$$missing gcc"; \
	[ -x /usr/bin/time ] || missing="$$missing time"; \
	command -v make >/dev/null || missing="$$missing make"; \
	command -v gdb >/dev/null || missing="$$missing gdb"; \
	if [ -n "$$missing" ]; then \
		echo "installing$$missing with apt-get"; \
		$(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq $$missing; \
	fi

# kvmrun is installed editable in compat mode: a plain path in a .pth file, where the default editable
# finder costs ~20 ms of every start-up.
$(VENV)/.installed: pyproject.toml
	@$(PYTHON) -m venv --help >/dev/null 2>&1 || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq python3-venv; }
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[test]' --config-settings editable_mode=compat
	touch $@

clean:
	rm -rf $(BUILD) .pytest_cache

distclean: clean
	rm -rf $(VENV)

.PHONY: all demo test check soak bench fuzz guests tools clean distclean rom
