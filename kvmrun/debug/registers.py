"""Register layouts gdb gets as a target description, and the g/G packets that follow them.

The layout follows the vCPU's mode when gdb connects (gdb reads target.xml then, once):

  long mode        amd64, <architecture>i386:x86-64: rax..r15, rip, eflags, selectors, x87,
                   fs_base/gs_base, and cr0 cr2 cr3 cr4 cr8 efer (`info registers cr3`)
  protected mode   i386, <architecture>i386: eax..edi, eip, eflags, selectors, x87, cr0..cr4, efer
  real mode        the i386 layout under <architecture>i8086: gdb disassembles 16-bit code by itself

What a user types in gdb (checked with gdb 13 by tests/test_gdb_server.py):

  no symbol file (a boot sector, a raw image): nothing, in every mode: `target remote :PORT`
  with a symbol file (`gdb kernel.elf`) that does not match the mode at connect, the file's
  architecture wins (an ELF32 in real mode: 32-bit disassembly; an ELF64 in protected or real mode, an
  ELF32 in long mode: gdb rejects the description and shows no registers), so name the mode first:
      real mode                      set architecture i8086          (then target remote :PORT)
      protected mode, an ELF64 file  set architecture i386
      long mode, an ELF32 file       set architecture i386:x86-64
  the guest changed mode since gdb connected: gdb keeps the layout it read, so reconnect:
      disconnect                     (the guest stays stopped; `detach` would let it run)
      set architecture MODE          (only with a symbol file, as above)
      target remote :PORT

eip/rip is the LINEAR pc (cs.base + ip), so `x/i $pc` and breakpoints use the addresses memory packets
take (real mode: eip = cs * 16 + ip).

kvmrun does not expose x87 or SSE state: gdb requires the x87 registers in the core feature, so they
are in the layout, read as zero, and writes to them are ignored (as are writes that leave a register
as it was); the optional SSE feature is left out. The descriptions say <osabi>none</osabi>: a guest has
no operating system ABI for gdb to assume (gdb's default GNU/Linux one warns in real mode). The i386
layout has no org.gnu.gdb.i386.segments feature (fs_base, gs_base): gdb 13 fails an internal assertion
on it under a GNU/Linux OS ABI, which a user's `set osabi` or a symbol file's ABI note still brings.
"""
from __future__ import annotations

TYPE_CHECKING = False     # typing is not imported at run time: ~11 ms of every start (named_tuple.py)
if TYPE_CHECKING:
    from typing import Dict, List, NamedTuple, Optional, Tuple
else:
    from ..named_tuple import NamedTuple

LONG_MODE = "i386:x86-64"
PROTECTED_MODE = "i386"
REAL_MODE = "i8086"


class Register(NamedTuple):
    name: str          # gdb's name
    bits: int
    source: str        # the Target's canonical name; "" for what kvmrun does not expose (reads as zero)
    type: str          # the description's type
    feature: str
    group: str = ""

    @property
    def size(self) -> int:
        return self.bits // 8


class Layout:
    """One target description: registers in g-packet order, and the XML gdb reads."""

    def __init__(self, architecture: str, registers: Tuple[Register, ...], types: Dict[str, str]):
        self.architecture = architecture
        self.registers = registers
        self._types = types          # feature -> the <flags> definitions its registers use
        self.size = sum(register.size for register in registers)     # bytes of a g reply
        self._index = {register.name: number for number, register in enumerate(registers)}
        self._xml: Optional[bytes] = None

    def number(self, name: str) -> int:
        return self._index[name]

    def offset(self, name: str) -> int:
        """Where a register starts in the g packet's bytes."""
        return sum(register.size for register in self.registers[:self._index[name]])

    def xml(self) -> bytes:
        if self._xml is None:
            self._xml = _description(self)
        return self._xml

    # --- values <-> packet bytes ---

    def encode(self, values: Dict[str, int]) -> bytes:
        """The g reply's bytes (before hex): each register little-endian, unexposed ones zero."""
        return b"".join(encode_register(register, values) for register in self.registers)

    def decode(self, data: bytes, current: Dict[str, int]) -> Dict[str, int]:
        """The registers a G packet's bytes change: canonical name -> new value. A register narrower
        than its canonical one keeps the upper bits it had (eax sets the low half of rax)."""
        if len(data) != self.size:
            raise ValueError(f"a G packet for this layout carries {self.size} bytes, not {len(data)}")
        changes: Dict[str, int] = {}
        offset = 0
        for register in self.registers:
            value = int.from_bytes(data[offset:offset + register.size], "little")
            offset += register.size
            changed = merge_register(register, value, current)
            if changed is not None:
                changes[register.source] = changed
        return changes


def encode_register(register: Register, values: Dict[str, int]) -> bytes:
    value = values.get(register.source, 0) if register.source else 0
    return (value & ((1 << register.bits) - 1)).to_bytes(register.size, "little")


def merge_register(register: Register, value: int, current: Dict[str, int]) -> Optional[int]:
    """The canonical register's new value after gdb wrote `value` to `register`, or None when nothing
    changes (an unexposed register, or the value it already has)."""
    if not register.source or register.source not in current:
        return None
    old = current[register.source]
    mask = (1 << register.bits) - 1
    new = (old & ~mask) | (value & mask)
    return None if new == old else new


# --- the layouts, in the order and with the names gdb's features/i386/*.xml use ---

CORE = "org.gnu.gdb.i386.core"
SEGMENTS = "org.gnu.gdb.i386.segments"
SYSTEM = "org.qemu.gdb.i386.sys"        # QEMU's name for the control registers: gdb shows them as extras

_EFLAGS = """<flags id="i386_eflags" size="4">
 <field name="CF" start="0" end="0"/><field name="" start="1" end="1"/><field name="PF" start="2" end="2"/>
 <field name="AF" start="4" end="4"/><field name="ZF" start="6" end="6"/><field name="SF" start="7" end="7"/>
 <field name="TF" start="8" end="8"/><field name="IF" start="9" end="9"/><field name="DF" start="10" end="10"/>
 <field name="OF" start="11" end="11"/><field name="NT" start="14" end="14"/><field name="RF" start="16" end="16"/>
 <field name="VM" start="17" end="17"/><field name="AC" start="18" end="18"/><field name="VIF" start="19" end="19"/>
 <field name="VIP" start="20" end="20"/><field name="ID" start="21" end="21"/>
</flags>"""

_SYSTEM_FLAGS = """<flags id="i386_cr0" size="{cr_size}">
 <field name="PE" start="0" end="0"/><field name="MP" start="1" end="1"/><field name="EM" start="2" end="2"/>
 <field name="TS" start="3" end="3"/><field name="ET" start="4" end="4"/><field name="NE" start="5" end="5"/>
 <field name="WP" start="16" end="16"/><field name="AM" start="18" end="18"/><field name="NW" start="29" end="29"/>
 <field name="CD" start="30" end="30"/><field name="PG" start="31" end="31"/>
</flags>
<flags id="i386_cr4" size="{cr_size}">
 <field name="VME" start="0" end="0"/><field name="PVI" start="1" end="1"/><field name="TSD" start="2" end="2"/>
 <field name="DE" start="3" end="3"/><field name="PSE" start="4" end="4"/><field name="PAE" start="5" end="5"/>
 <field name="MCE" start="6" end="6"/><field name="PGE" start="7" end="7"/><field name="PCE" start="8" end="8"/>
 <field name="OSFXSR" start="9" end="9"/><field name="OSXMMEXCPT" start="10" end="10"/>
 <field name="UMIP" start="11" end="11"/><field name="LA57" start="12" end="12"/>
 <field name="FSGSBASE" start="16" end="16"/><field name="PCIDE" start="17" end="17"/>
 <field name="OSXSAVE" start="18" end="18"/><field name="SMEP" start="20" end="20"/>
 <field name="SMAP" start="21" end="21"/><field name="PKE" start="22" end="22"/>
</flags>
<flags id="i386_efer" size="8">
 <field name="SCE" start="0" end="0"/><field name="LME" start="8" end="8"/><field name="LMA" start="10" end="10"/>
 <field name="NXE" start="11" end="11"/><field name="SVME" start="12" end="12"/>
 <field name="LMSLE" start="13" end="13"/><field name="FFXSR" start="14" end="14"/>
</flags>"""


def _x87() -> List[Register]:
    stack = [Register(f"st{i}", 80, "", "i387_ext", CORE) for i in range(8)]
    control = [Register(name, 32, "", "int", CORE, "float")
               for name in ("fctrl", "fstat", "ftag", "fiseg", "fioff", "foseg", "fooff", "fop")]
    return stack + control


def _selectors_and_flags() -> List[Register]:
    return ([Register("eflags", 32, "eflags", "i386_eflags", CORE)]
            + [Register(name, 32, name, "int32", CORE) for name in ("cs", "ss", "ds", "es", "fs", "gs")])


def _amd64() -> Layout:
    general = [Register(name, 64, name, "data_ptr" if name in ("rbp", "rsp") else "int64", CORE)
               for name in ("rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp",
                            "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15")]
    registers = (general + [Register("rip", 64, "rip", "code_ptr", CORE)] + _selectors_and_flags() + _x87()
                 + [Register(name, 64, name, "int", SEGMENTS) for name in ("fs_base", "gs_base")]
                 + [Register("cr0", 64, "cr0", "i386_cr0", SYSTEM, "system"),
                    Register("cr2", 64, "cr2", "int64", SYSTEM, "system"),
                    Register("cr3", 64, "cr3", "int64", SYSTEM, "system"),
                    Register("cr4", 64, "cr4", "i386_cr4", SYSTEM, "system"),
                    Register("cr8", 64, "cr8", "int64", SYSTEM, "system"),
                    Register("efer", 64, "efer", "i386_efer", SYSTEM, "system")])
    return Layout(LONG_MODE, tuple(registers), {CORE: _EFLAGS, SYSTEM: _SYSTEM_FLAGS.format(cr_size=8)})


# The i386 names and order of the 64-bit registers' low halves (gdb's 32bit-core.xml).
_I386_GENERAL = (("eax", "rax"), ("ecx", "rcx"), ("edx", "rdx"), ("ebx", "rbx"),
                 ("esp", "rsp"), ("ebp", "rbp"), ("esi", "rsi"), ("edi", "rdi"))


def _i386(architecture: str) -> Layout:
    general = [Register(name, 32, source, "data_ptr" if name in ("esp", "ebp") else "int32", CORE)
               for name, source in _I386_GENERAL]
    registers = (general + [Register("eip", 32, "rip", "code_ptr", CORE)] + _selectors_and_flags() + _x87()
                 + [Register("cr0", 32, "cr0", "i386_cr0", SYSTEM, "system"),
                    Register("cr2", 32, "cr2", "int32", SYSTEM, "system"),
                    Register("cr3", 32, "cr3", "int32", SYSTEM, "system"),
                    Register("cr4", 32, "cr4", "i386_cr4", SYSTEM, "system"),
                    Register("efer", 64, "efer", "i386_efer", SYSTEM, "system")])
    return Layout(architecture, tuple(registers), {CORE: _EFLAGS, SYSTEM: _SYSTEM_FLAGS.format(cr_size=4)})


def _description(layout: Layout) -> bytes:
    lines = ['<?xml version="1.0"?>', '<!DOCTYPE target SYSTEM "gdb-target.dtd">', "<target>",
             f"<architecture>{layout.architecture}</architecture>", "<osabi>none</osabi>"]
    feature = None
    for register in layout.registers:
        if register.feature != feature:
            if feature is not None:
                lines.append("</feature>")
            feature = register.feature
            lines.append(f'<feature name="{feature}">')
            if feature in layout._types:
                lines.append(layout._types[feature])
        group = f' group="{register.group}"' if register.group else ""
        lines.append(f'<reg name="{register.name}" bitsize="{register.bits}" type="{register.type}"{group}/>')
    lines += ["</feature>", "</target>", ""]
    return "\n".join(lines).encode()


_LAYOUTS: Dict[str, Layout] = {}


def layout_for(architecture: str) -> Layout:
    """The layout for a Target.architecture() answer; anything unknown gets the i386 one."""
    if architecture not in _LAYOUTS:
        if architecture == LONG_MODE:
            _LAYOUTS[architecture] = _amd64()
        else:
            _LAYOUTS[architecture] = _i386(REAL_MODE if architecture == REAL_MODE else PROTECTED_MODE)
    return _LAYOUTS[architecture]
