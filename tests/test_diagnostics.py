import subprocess
import sys

import pytest

from kvmrun.diagnostics import CODE_BYTES, CR0_FLAGS, EFER_FLAGS, GENERAL_REGISTERS, EmulationFailure, FaultReport, \
    SegmentState, decode_flags, emulation_instruction_bytes, entry_failure_name, exit_reason_name, \
    explain_emulation_failure, internal_suberror_name, read_code, software_virtualizer
from kvmrun.layout import GiB, MiB
from kvmrun.memory import GuestMemory, RamLayout


def test_flag_decoding():
    assert decode_flags(0x80010033, CR0_FLAGS) == "PE|MP|ET|NE|WP|PG"
    assert decode_flags(0x500, EFER_FLAGS) == "LME|LMA"
    assert decode_flags(0, CR0_FLAGS) == "0"
    assert decode_flags(1 << 40, CR0_FLAGS) == "bit40"


def test_names():
    assert exit_reason_name(8) == "KVM_EXIT_SHUTDOWN (8)"
    assert exit_reason_name(250) == "unknown exit reason (250)"
    assert internal_suberror_name(1) == "KVM_INTERNAL_ERROR_EMULATION (1)"
    assert entry_failure_name(0x80000021) == "0x80000021: VM-entry failure, invalid guest state"


def test_report_text_has_everything_a_reader_needs():
    seg = SegmentState(0x8, 0, 0xFFFFFFFF, 0xB, 1, 0, 0, 1, 1, 1, 0)
    regs = {n: i for i, n in enumerate(("rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rsp", "rbp", "r8", "r9",
                                        "r10", "r11", "r12", "r13", "r14", "r15", "rip", "rflags"))}
    regs["rip"], regs["rflags"] = 0x100026, 0x10046
    report = FaultReport(vcpu=3, exit="KVM_EXIT_SHUTDOWN (8)", summary="triple fault",
                         details=(("suberror", "X"),), regs=regs,
                         control={"cr0": 0x80010033, "cr2": 0, "cr3": 0x1000, "cr4": 0x620, "efer": 0x500},
                         segments={"cs": seg}, tables={"idt": (0, 0)}, code_address=0x100026, code=b"\x0f\x0b")
    text = report.as_text()
    for needle in ("vCPU 3", "KVM_EXIT_SHUTDOWN (8)", "triple fault", "suberror", "long mode, 64-bit",
                   "RIP 0000000000100026", "[PE|MP|ET|NE|WP|PG]", "[PAE|OSFXSR|OSXMMEXCPT]", "[LME|LMA]",
                   "CS   0008", "type=b dpl=0 P S L G", "0f 0b", "ZF"):
        assert needle in text, needle


# --- disassembly in the vCPU's mode ------------------------------------------------------------------

CR0_REAL, CR0_PROTECTED, CR0_LONG = 0x60000010, 0x11, 0x80010033
EFER_LONG = 0x500


def report_in(cr0, efer=0, l=0, db=0, rflags=0x2, rip=0x7C00, code=b"", code_address=None, **extra):  # noqa: E741
    seg = SegmentState(0x8, 0, 0xFFFFFFFF, 0xB, 1, 0, db, 1, l, 1, 0)
    regs = {name: 0 for name in GENERAL_REGISTERS}
    regs.update(rip=rip, rflags=rflags)
    return FaultReport(vcpu=0, exit="KVM_EXIT_SHUTDOWN (8)", summary="triple fault", regs=regs,
                       control={"cr0": cr0, "cr2": 0, "cr3": 0, "cr4": 0, "efer": efer}, segments={"cs": seg},
                       code_address=rip if code_address is None else code_address, code=code, **extra)


MODES = {
    "real": dict(cr0=CR0_REAL),
    "virtual-8086": dict(cr0=CR0_PROTECTED, db=1, rflags=0x20002),
    "protected, 16-bit code": dict(cr0=CR0_PROTECTED, db=0),
    "protected, 32-bit code": dict(cr0=CR0_PROTECTED, db=1),
    "compatibility, 32-bit code": dict(cr0=CR0_LONG, efer=EFER_LONG, l=0, db=1),
    "compatibility, 16-bit code": dict(cr0=CR0_LONG, efer=EFER_LONG, l=0, db=0),
    "64-bit": dict(cr0=CR0_LONG, efer=EFER_LONG, l=1),
}


@pytest.mark.parametrize("mode, bits, listing", [
    # the same bytes, b8 78 56 34 12 48 89 c8, decoded as each mode's CPU would
    ("real", 16, ["=> 7c00  b8 78 56  mov ax, 0x5678", "   7c03  34 12     xor al, 0x12",
                  "   7c05  48        dec ax", "   7c06  89 c8     mov ax, cx"]),
    ("virtual-8086", 16, ["=> 7c00  b8 78 56  mov ax, 0x5678"]),
    ("protected, 16-bit code", 16, ["=> 7c00  b8 78 56  mov ax, 0x5678"]),
    ("protected, 32-bit code", 32, ["=> 00007c00  b8 78 56 34 12  mov eax, 0x12345678",
                                    "   00007c05  48              dec eax",
                                    "   00007c06  89 c8           mov eax, ecx"]),
    ("compatibility, 32-bit code", 32, ["=> 00007c00  b8 78 56 34 12  mov eax, 0x12345678",
                                        "   00007c05  48              dec eax"]),
    ("compatibility, 16-bit code", 16, ["=> 7c00  b8 78 56  mov ax, 0x5678"]),
    ("64-bit", 64, ["=> 0000000000007c00  b8 78 56 34 12  mov eax, 0x12345678",
                    "   0000000000007c05  48 89 c8        mov rax, rcx"]),
])
def test_the_report_disassembles_in_the_vcpus_mode(mode, bits, listing):
    report = report_in(code=bytes.fromhex("b878563412" "4889c8"), **MODES[mode])
    assert report.code_bits() == bits
    text = report.as_text()
    assert f"code at RIP (physical 0x7c00, {bits}-bit code):" in text
    assert "b8 78 56 34 12 48 89 c8" in text                       # the raw bytes stay
    lines = [line.strip("│ ") for line in text.splitlines()]
    for expected in listing:
        assert expected.strip() in lines, (expected, text)


def test_the_listing_marks_only_the_faulting_instruction_and_stops_at_garbage():
    text = report_in(code=bytes.fromhex("0f0b" "90" "ffff"), rip=0x100000, **MODES["64-bit"]).as_text()
    assert "=> 0000000000100000  0f 0b  ud2" in text
    assert "   0000000000100002  90     nop" in text
    assert text.count("=>") == 1


def test_bytes_that_decode_to_nothing_say_so():
    text = report_in(code=b"\xff\xff", **MODES["64-bit"]).as_text()
    assert "ff ff" in text and "=> (no instruction decodes from these bytes)" in text


def test_code_elsewhere_than_rip_is_labelled_and_listed_from_its_own_address():
    report = report_in(code=b"\xcd\x10\xf4", rip=0x11, code_address=0x7C04, code_ip=0x7C04,
                       code_where="0000:7C04, where it was raised", **MODES["real"])
    text = report.as_text(width=200)
    assert "code at 0000:7C04, where it was raised (physical 0x7c04, 16-bit code):" in text
    assert "=> 7c04  cd 10  int 0x10" in text


def test_capstone_is_imported_only_when_a_report_is_rendered():
    script = ("import sys\nfrom kvmrun.diagnostics import GENERAL_REGISTERS, FaultReport\n"
              "r = FaultReport(vcpu=0, exit='x', summary='y', regs=dict.fromkeys(GENERAL_REGISTERS, 0), code_address=0,"
              " code=b'\\x90')\n"
              "assert 'capstone' not in sys.modules\nr.as_text()\nassert 'capstone' in sys.modules\n")
    subprocess.run([sys.executable, "-c", script], check=True)


# --- code bytes near the end of RAM ----------------------------------------------------------------

def test_code_near_the_end_of_ram_shows_what_ram_holds():
    mem = GuestMemory.for_tests(1 << 20)
    mem.write(0xFFFFA, b"\x0f\x0b\x90\x90\x90\xf4")
    assert read_code(mem, 0xFFFFA) == (0xFFFFA, b"\x0f\x0b\x90\x90\x90\xf4")
    assert read_code(mem, 0xFFFFF) == (0xFFFFF, b"\xf4")
    assert read_code(mem, 0x100000) == (None, b"")
    assert read_code(mem, 0x1000) == (0x1000, bytes(CODE_BYTES))


def test_code_before_the_3gib_gap_stops_at_the_gap():
    mem = RamLayout(3 * GiB + MiB)
    reads = []
    mem.read = lambda addr, length: reads.append((addr, length)) or bytes(length)   # type: ignore[method-assign]
    assert read_code(mem, 3 * GiB - 4) == (3 * GiB - 4, bytes(4))
    assert reads == [(3 * GiB - 4, 4)]


def test_with_paging_each_page_of_code_is_translated_on_its_own():
    mem = GuestMemory.for_tests(1 << 20)
    mem.write(0x5FF0, b"A" * 16)                      # linear 0x1FF0 -> physical 0x5FF0
    mem.write(0x3000, b"B" * 16)                      # linear 0x2000 -> physical 0x3000
    pages = {0x1000: 0x5000, 0x2000: 0x3000}
    translate = lambda linear: pages[linear & ~0xFFF] + (linear & 0xFFF) if linear & ~0xFFF in pages else None  # noqa: E731
    assert read_code(mem, 0x1FF0, translate) == (0x5FF0, b"A" * 16 + b"B" * 16)
    assert read_code(mem, 0x2FF8, translate) == (0x3FF8, bytes(8))    # the page after is unmapped


# --- KVM emulation failures -------------------------------------------------------------------------

def test_instruction_bytes_kvm_hands_back_with_an_emulation_failure():
    # As this host's KVM reported `addps xmm0, xmm1`: flags, then insn_size (15) and the bytes.
    data = (0x1, 0xF4E600B0C1580F0F, 0x0, 0x1000, 0, 0, 0, 0)
    assert emulation_instruction_bytes(data) == bytes.fromhex("0f58c1b000e6f4") + bytes(8)
    assert emulation_instruction_bytes((0x0, 0x1000, 0, 0)) is None      # no bytes flag
    assert emulation_instruction_bytes((0x1,)) is None


@pytest.mark.parametrize("code, named, advice", [
    ("0f58c1", "`addps xmm0, xmm1`", "-mgeneral-regs-only"),
    ("660fefc0", "`pxor xmm0, xmm0`", "-mgeneral-regs-only"),
    ("c5fc58c1", "`vaddps ymm0, ymm0, ymm1`", "-mgeneral-regs-only"),
    ("d9e8", "`fld1`", "-mgeneral-regs-only"),
    ("cc", "`int3`", "hardware breakpoints"),
    ("f0480fc70f", "`lock cmpxchg16b xmmword ptr [rdi]`", "-mno-cx16"),
    ("0fae27", "`xsave ptr [rdi]`", "leave the FPU/SSE state alone"),
    ("480fae0f", "`fxrstor64 ptr [rdi]`", "leave the FPU/SSE state alone"),
    ("0f01d0", "`xgetbv`", "avoid it in ring-0 code"),
])
def test_an_emulation_failure_names_the_instruction_and_what_to_do_on_a_software_virtualizer(code, named, advice):
    failure = EmulationFailure(bytes.fromhex(code), from_kvm=True, virtualizer="PVM", ring0=True)
    text = "\n".join(explain_emulation_failure(failure, 0x100000, 64))
    assert f"the instruction: {named}" in text and "as KVM reported them" in text
    assert "This host's KVM is PVM, a software virtualizer" in text
    assert "What to do:" in text and advice in text


def test_an_emulation_failure_in_32_bit_code_decodes_as_32_bit():
    failure = EmulationFailure(bytes.fromhex("cd80"), from_kvm=False, virtualizer="PVM", ring0=True)
    text = "\n".join(explain_emulation_failure(failure, 0x100000, 32))
    assert "`int 0x80`" in text and "read from guest memory at RIP" in text and "long mode" in text


def test_without_a_software_virtualizer_there_is_no_ring_0_advice():
    failure = EmulationFailure(bytes.fromhex("0f58c1"), from_kvm=True, virtualizer=None, ring0=True)
    text = "\n".join(explain_emulation_failure(failure, 0x100000, 64))
    assert "`addps xmm0, xmm1`" in text and "PVM" not in text and "What to do" not in text


def test_the_report_of_an_emulation_failure_explains_it():
    failure = EmulationFailure(bytes.fromhex("0f58c1"), from_kvm=True, virtualizer="PVM", ring0=True)
    text = report_in(code=bytes.fromhex("0f58c1"), emulation=failure, **MODES["64-bit"]).as_text(width=200)
    assert "the instruction: `addps xmm0, xmm1`" in text and "-mgeneral-regs-only" in text


def test_software_virtualizer_is_pvm_when_only_kvm_pvm_is_loaded(tmp_path):
    (tmp_path / "kvm").mkdir()
    assert software_virtualizer(str(tmp_path)) is None
    (tmp_path / "kvm_pvm").mkdir()
    assert software_virtualizer(str(tmp_path)) == "PVM"
    (tmp_path / "kvm_intel").mkdir()          # then /dev/kvm may be hardware KVM's: claim nothing
    assert software_virtualizer(str(tmp_path)) is None
