from kvmrun.diagnostics import CR0_FLAGS, EFER_FLAGS, FaultReport, SegmentState, decode_flags, \
    entry_failure_name, exit_reason_name, internal_suberror_name


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
