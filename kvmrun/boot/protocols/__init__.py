"""Boot protocols: the ways a guest can be entered.

A loader (boot/image.py, elf.py, raw.py) says what an image is: its segments, its entry, and the
protocol facts it found in it. A protocol says how such an image is started: it turns the loader's
LoadPlan into a BootSetup (boot/setup.py) — the blobs to write (the image's segments and the
protocol's own structures), the ranges it reserves, each vCPU's starting state, and what the
platform must provide. The protocol writes nothing and touches no KVM: the machine checks the
setup as a whole, writes it, and sets the vCPUs' registers from it.

Each protocol is one module with `plan(...) -> BootSetup`:
  kvmrun_abi  kvmrun's own ABI (docs/guest-abi.md): real, protected or long mode with kvmrun's GDT,
              TSS, identity-mapped page tables and per-vCPU stacks; every vCPU starts at the entry
              with RDI = its index, RSI = the vCPU count, RDX = RAM in KiB.
Next, each a module beside it, chosen in boot/prepare.py from what the loader found:
  multiboot   EAX = 0x2BADB002 (multiboot2: 0x36D76289), EBX = a boot information structure the
              protocol places as a blob of its own and reserves; flat protected mode, paging off.
  pvh         the Xen PVH note's 32-bit entry, EBX = an hvm_start_info blob.
  bios        a boot sector at 0x7C00 in real mode, with the firmware's data and services it
              expects; APs waiting for INIT/SIPI, which its PlatformNeeds asks the platform for.
"""
