"""`kvmrun inspect`: the boot plan without running it (boot/describe.py, report/boot_plan.py, cli.py).

Each guest's JSON is held field by field to what computes it independently: the ELF's program headers
read with pyelftools, the kernel headers' probes, the BootSetup prepare.py plans, cpu_modes' segments.
The KVM tests prove the plan is what `kvmrun boot` executes: the registers boot hands KVM, the blobs it
writes and the devices it registers are recorded during a real boot and compared with inspect's."""
import builtins
import io
import json
import os

import pytest
from click.testing import CliRunner
from elftools.elf.elffile import ELFFile

from kvmrun import layout, paging
from kvmrun.boot import multiboot, multiboot2, pvh
from kvmrun.boot.cpu_modes import CODE32, CODE64, DATA, GDT_LIMIT, TSS
from kvmrun.boot.describe import GENERAL_REGISTERS, describe, describe_setup, reset_sregs
from kvmrun.boot.prepare import plan_image_for, plan_setup
from kvmrun.bios import rom
from kvmrun.cli import main
from kvmrun.memory import RamLayout
from kvmrun.options import boot_config
from kvmrun.platform.devices import bus_devices, machine_devices
from kvmrun.report.boot_plan import plan_text

from conftest import guest, run_kvmrun


def plan_of(name, **options):
    return describe(boot_config(guest(name), options))


def planned(name, **options):
    """What prepare.py plans for the guest, the way boot plans it before opening /dev/kvm."""
    config = boot_config(guest(name), options)
    image_boot = plan_image_for(config)
    return config, image_boot, plan_setup(config, image_boot, one_gib_pages=True)


def invoke(*args, env=None):
    result = CliRunner().invoke(main, list(args), env=env)
    return result.exit_code, result.stdout, result.stderr


def program_headers(path):
    """PT_LOAD headers with a size, as pyelftools reads them (not kvmrun's loader)."""
    with open(path, "rb") as f:
        elf = ELFFile(f)
        return elf.header.e_entry, [segment.header for segment in elf.iter_segments()
                                    if segment.header.p_type == "PT_LOAD" and segment.header.p_memsz]


def flags_text(p_flags):
    return "".join(letter if p_flags & bit else "-" for letter, bit in (("R", 4), ("W", 2), ("X", 1)))


def check_segments_against_the_elf(plan, path):
    entry, headers = program_headers(path)
    assert [(s["file_offset"], s["file_size"], s["start"], s["end"], s["flags"]) for s in plan["segments"]] == \
        [(h.p_offset, h.p_filesz, h.p_paddr, h.p_paddr + h.p_memsz, flags_text(h.p_flags)) for h in headers]
    for segment in plan["segments"]:
        assert segment["data_end"] == segment["start"] + segment["file_size"]
    return entry


def segment_fields(segment):
    return {name: getattr(segment, name) for name in
            ("selector", "base", "limit", "type", "present", "dpl", "db", "s", "l", "g")}


def check_gdt_agrees_with_the_segment_registers(plan):
    """Every descriptor a segment register is loaded from says what the register holds: the GDT bytes
    boot writes and the sregs it sets cannot contradict each other."""
    sregs = plan["vcpus"][0]["sregs"]
    loaded = 0
    for entry in plan["gdt"]:
        for register in entry["used_by"]:
            held = sregs[register]
            for name in ("base", "limit", "type", "present", "dpl", "db", "s", "l", "g"):
                assert entry[name] == held[name], (register, name)
            loaded += 1
    assert loaded == 7             # cs, ds, es, fs, gs, ss, tr
    assert sregs["gdt"] == {"base": layout.GDT_ADDR, "limit": GDT_LIMIT}


# --- guests, field by field -----------------------------------------------------------------------

def test_elf64_kvmrun_abi():
    plan = plan_of("abi64.elf", cpus=2, memory="64M")
    path = guest("abi64.elf")
    entry = check_segments_against_the_elf(plan, path)
    assert (plan["protocol"], plan["mode"], plan["image"]["format"]) == ("kvmrun", "long", "ELF64")
    assert plan["image"]["size"] == os.path.getsize(path)
    assert "ELF magic" in plan["image"]["detected"]
    assert plan["entry"] == entry
    assert plan["cpus"] == 2 and plan["memory"] == {"size": 64 << 20, "regions": [{"start": 0, "end": 64 << 20}]}
    assert plan["platform"] == {"irqchip": False, "ap_start": "entry", "bios": False}
    # kvmrun's ABI: RDI = index, RSI = count, RDX = RAM in KiB, RSP = the top of its own stack.
    tops = [64 << 20, (64 << 20) - layout.STACK_SIZE]
    for index, vcpu in enumerate(plan["vcpus"]):
        assert vcpu["runnable"] and vcpu["entry"] == entry and vcpu["regs"]["rip"] == entry
        assert (vcpu["regs"]["rdi"], vcpu["regs"]["rsi"], vcpu["regs"]["rdx"], vcpu["regs"]["rsp"]) == \
            (index, 2, 64 << 10, tops[index])
        assert vcpu["rflags"] == {"value": 2, "flags": ["1"]}
        assert vcpu["sregs"]["cs"] == {**segment_fields(CODE64.to_kvm()), "avl": 0, "unusable": 0}
        assert vcpu["sregs"]["tr"]["base"] == TSS.base
        assert vcpu["sregs"]["cr0"]["flags"] == ["PE", "MP", "ET", "NE", "WP", "PG"]
        assert vcpu["sregs"]["cr4"]["flags"] == ["PAE", "OSFXSR", "OSXMMEXCPT"]
        assert vcpu["sregs"]["efer"]["flags"] == ["LME", "LMA"]
    assert plan["vcpus"][0]["points_to"] == {"rsp": "the top of vCPU stacks"}
    assert [entry["kind"] for entry in plan["gdt"]] == ["null", "64-bit code", "32-bit data", "32-bit code",
                                                        "64-bit TSS (busy)"]
    assert [(e["selector"], e["used_by"]) for e in plan["gdt"]] == [
        (0, []), (CODE64.selector, ["cs"]), (DATA.selector, ["ds", "es", "fs", "gs", "ss"]), (CODE32.selector, []),
        (TSS.selector, ["tr"])]
    check_gdt_agrees_with_the_segment_registers(plan)


def test_elf64_page_tables_cover_what_paging_py_maps():
    for memory, gibs in (("64M", 4), ("5G", 6)):       # 5 GiB of RAM reaches 6 GiB (the 3-4 GiB gap)
        config = boot_config(guest("hello64.elf"), {"memory": memory})
        plan = describe(config)
        tables = plan["page_tables"]
        span = paging.mapped_span(RamLayout(config.memory).top)
        assert span == gibs << 30
        assert tables["cr3"] == layout.PAGE_TABLES_ADDR == plan["vcpus"][0]["sregs"]["cr3"]
        assert tables["levels"] == 4
        assert tables["mappings"] == [{"start": 0, "end": span, "physical": 0, "page_size": 1 << 30,
                                       "writable": True, "user": False, "executable": True}]
        end = layout.PAGE_TABLES_ADDR + paging.table_pages(span, True) * layout.PAGE_SIZE
        assert tables["tables"] == {"name": "page tables", "start": layout.PAGE_TABLES_ADDR, "end": end}
        fallback = layout.PAGE_TABLES_ADDR + paging.table_pages(span, False) * layout.PAGE_SIZE
        assert tables["without_1g_pages"] == {"start": layout.PAGE_TABLES_ADDR, "end": fallback,
                                              "page_size": 2 << 20}


def test_elf32_in_protected_mode():
    plan = plan_of("hello32.elf")
    entry = check_segments_against_the_elf(plan, guest("hello32.elf"))
    assert (plan["protocol"], plan["mode"], plan["image"]["format"], plan["entry"]) == \
        ("kvmrun", "protected", "ELF32", entry)
    sregs = plan["vcpus"][0]["sregs"]
    assert sregs["cs"]["selector"] == CODE32.selector and sregs["cs"]["db"] == 1 and sregs["cs"]["l"] == 0
    assert sregs["cr0"]["flags"] == ["PE", "ET"] and sregs["efer"]["value"] == 0 and sregs["cr3"] == 0
    assert plan["page_tables"] is None
    assert [s["name"] for s in plan["structures"]] == ["GDT", "TSS"]
    check_gdt_agrees_with_the_segment_registers(plan)


def test_raw_image_in_real_mode():
    path = guest("hello16.bin")
    plan = plan_of("hello16.bin", mode="real")
    assert (plan["protocol"], plan["mode"], plan["image"]["format"]) == ("kvmrun", "real", "raw")
    assert plan["image"]["detected"].startswith("--mode real")
    assert plan["segments"] == [{"name": "the image", "file_offset": 0, "file_size": os.path.getsize(path),
                                 "start": layout.REAL_MODE_LOAD_ADDR,
                                 "data_end": layout.REAL_MODE_LOAD_ADDR + os.path.getsize(path),
                                 "end": layout.REAL_MODE_LOAD_ADDR + os.path.getsize(path), "flags": ""}]
    vcpu = plan["vcpus"][0]
    assert vcpu["cs_ip"] == "0000:7C00"
    assert (vcpu["regs"]["rsp"], vcpu["regs"]["rdx"]) == (layout.REAL_MODE_SP, layout.REAL_MODE_BOOT_DRIVE)
    # Real mode keeps the reset state but for the segments: no GDT of kvmrun's, CR0 as after reset.
    assert plan["gdt"] == [] and plan["page_tables"] is None
    assert vcpu["sregs"]["cr0"]["value"] == reset_sregs().cr0
    assert vcpu["sregs"]["cs"]["selector"] == 0 and vcpu["sregs"]["cs"]["base"] == 0


def test_raw_image_in_long_mode_by_default():
    plan = plan_of("hello64.bin")
    assert (plan["protocol"], plan["mode"], plan["image"]["format"], plan["entry"]) == \
        ("kvmrun", "long", "raw", layout.DEFAULT_LOAD_ADDR)
    assert "raw image" in plan["image"]["detected"]


@pytest.mark.parametrize("name, protocol, magic, info", [
    ("barebones.elf", "multiboot", multiboot.BOOTLOADER_MAGIC, "multiboot information"),
    ("barebones2.elf", "multiboot2", multiboot2.BOOTLOADER_MAGIC, "multiboot2 information"),
])
def test_multiboot_kernels(name, protocol, magic, info):
    path = guest(name)
    plan = plan_of(name, cpus=2, cmdline="hello")
    config, image_boot, setup = planned(name, cpus=2, cmdline="hello")
    image = open(path, "rb").read()
    header = (multiboot if protocol == "multiboot" else multiboot2).probe(image)
    assert (plan["protocol"], plan["mode"]) == (protocol, "protected")
    assert f"header at offset 0x{header.offset:x}" in plan["image"]["detected"]
    assert plan["entry"] == setup.vcpus[0].entry
    boot_info = setup.vcpus[0].regs["rbx"]
    vcpu = plan["vcpus"][0]
    assert (vcpu["regs"]["rax"], vcpu["regs"]["rbx"]) == (magic, boot_info)
    assert vcpu["points_to"]["rbx"] == f"{info} +0x0"
    assert [s for s in plan["structures"] if s["name"] == info][0]["start"] == boot_info
    assert [v["runnable"] for v in plan["vcpus"]] == [True, False]
    assert plan["platform"] == {"irqchip": True, "ap_start": "sipi", "bios": False}
    assert [s["name"] for s in plan["structures"]] == [b.name for b in setup.blobs if b.structure]
    if plan["image"]["format"].endswith("program headers"):
        check_segments_against_the_elf(plan, path)
    from kvmrun.platform.memory_map import memory_map
    assert [(e["start"], e["end"]) for e in plan["memory_map"]] == \
        [(entry.addr, entry.end) for entry in memory_map(RamLayout(config.memory))]
    check_gdt_agrees_with_the_segment_registers(plan)


def test_pvh_kernel():
    path = guest("pvh.elf")
    plan = plan_of("pvh.elf")
    entry = pvh.probe(open(path, "rb").read())
    assert (plan["protocol"], plan["entry"]) == ("PVH", entry)
    assert f"PVH entry 0x{entry:x}" in plan["image"]["detected"]
    check_segments_against_the_elf(plan, path)
    assert plan["vcpus"][0]["points_to"]["rbx"] == "PVH start info +0x0"
    assert plan["vcpus"][0]["regs"]["rax"] == 0


def test_boot_sector():
    path = guest("hello.img")
    plan = plan_of("hello.img")
    assert (plan["protocol"], plan["mode"], plan["image"]["format"]) == ("boot sector", "real", "boot disk (raw)")
    assert plan["segments"] == [{"name": "boot sector", "file_offset": 0, "file_size": 512, "start": 0x7C00,
                                 "data_end": 0x7E00, "end": 0x7E00, "flags": ""}]
    assert plan["image"]["size"] == os.path.getsize(path)
    vcpu = plan["vcpus"][0]
    start = rom.ROM_ADDR + rom.START
    assert plan["entry"] == vcpu["entry"] == start
    assert vcpu["cs_ip"] == f"{rom.ROM_SEGMENT:04X}:{rom.START:04X}"
    assert plan["platform"] == {"irqchip": True, "ap_start": "sipi", "bios": True}
    names = [device["name"] for device in plan["devices"]]
    assert "BIOS trap" in names and "BIOS ROM" in names
    trap = [device for device in plan["devices"] if device["name"] == "BIOS trap"][0]
    assert (trap["space"], trap["start"], trap["end"]) == ("io", rom.BIOS_PORT, rom.BIOS_PORT + 1)


def test_devices_are_the_list_the_machine_builds():
    for name, options in (("hello64.elf", {}), ("barebones.elf", {}), ("hello.img", {}),
                          ("hello64.elf", {"irqchip": "on", "exit_code": "qemu"})):
        config, _, setup = planned(name, **options)
        plan = describe(config)
        assert [(d["name"], d["space"], d["start"], d["end"], d["by"]) for d in plan["devices"]] == \
            [(d.name, d.space, d.start, d.end, d.by) for d in machine_devices(config, setup.needs)]
    assert "(V << 1) | 1" in [d for d in plan["devices"] if d["name"] == "exit port"][0]["why"]


class _Output:
    def put(self, byte):
        pass


@pytest.mark.parametrize("irqchip", [False, True])
def test_the_machine_registers_exactly_the_bus_devices(irqchip, monkeypatch):
    import kvmrun.machine as machine
    registered = []

    class RecordingBus(machine.IoBus):
        def register(self, first_port, count, device):
            registered.append((first_port, count, device))
            super().register(first_port, count, device)

    monkeypatch.setattr(machine, "IoBus", RecordingBus)
    config = boot_config(guest("hello64.elf"), {})
    devices = machine._Devices(config, None, irqchip, _Output(), None, lambda outcome: None)
    listed = bus_devices(config, irqchip)
    assert [(first, count) for first, count, _ in registered] == [(device.start, device.size) for device in listed]
    models = dict(zip((device.key for device in listed), (model for _, _, model in registered)))
    assert models["com1"] is devices.uart and models["vga"] is devices.vga
    assert (models.get("cmos") is devices.rtc, devices.rtc is not None) == (True, irqchip)


def test_more_vcpus_than_shown_are_all_in_the_json():
    plan = plan_of("hello64.elf", cpus=6)
    assert [v["regs"]["rdi"] for v in plan["vcpus"]] == list(range(6))
    assert "2 more vCPUs" in plan_text(plan, 120)


def test_text_shows_every_section():
    text = plan_text(plan_of("barebones.elf"), 140)
    for heading in ("Image segments", "kvmrun's structures", "GDT", "vCPUs before their first instruction",
                    "Devices", "Memory map"):
        assert heading in text
    assert "0x2badb002" in text and "multiboot information +0x0" in text
    assert "Page tables: CR3 0x1000, 4-level" in plan_text(plan_of("hello64.elf"), 140)


def test_json_is_plain_data_and_stable():
    plan = plan_of("hello64.elf")
    assert json.loads(json.dumps(plan)) == plan
    assert plan["schema"] == 1
    assert list(plan) == ["schema", "image", "protocol", "mode", "entry", "memory", "cpus", "platform", "segments",
                          "structures", "reserved", "gdt", "page_tables", "vcpus", "devices", "memory_map", "notes"]
    assert list(plan["vcpus"][0]["regs"]) == list(GENERAL_REGISTERS)


def test_notes_are_shown():
    plan = plan_of("barebones.elf")
    config, _, setup = planned("barebones.elf")
    assert plan["notes"] == list(setup.notes)


# --- the command line -----------------------------------------------------------------------------

def test_inspect_json_parses_and_matches_describe():
    result = run_kvmrun("inspect", "--json", "-c", "2", guest("hello64.elf"))
    assert result.returncode == 0 and result.stderr == b""
    assert json.loads(result.stdout) == plan_of("hello64.elf", cpus=2)


def test_inspect_text_for_people():
    result = run_kvmrun("inspect", guest("hello64.elf"))
    assert (result.returncode, result.stderr) == (0, b"")
    out = result.stdout.decode()
    assert "kvmrun inspect" in out and "ELF64" in out and "segment 0 (PT_LOAD)" in out
    assert "\x1b[" not in out                     # not a terminal: no colours


@pytest.mark.parametrize("args", [
    ["nonexistent.elf"],
    ["--cpus", "0", "{hello64}"],
    ["--memory", "5X", "{hello64}"],
    ["--load-addr", "0x1000", "{hello64}"],           # raw only: the ELF gives its own
    ["--mode", "real", "--cpus", "2", "{hello16}"],
    ["--cmdline", "x", "{hello64}"],
])
def test_errors_are_boots_own_one_line_and_status_2(args, tmp_path):
    args = [arg.format(hello64=guest("hello64.elf"), hello16=guest("hello16.bin")) for arg in args]
    inspected = run_kvmrun("inspect", *args)
    booted = run_kvmrun("boot", *args, env={"KVMRUN_KVM_DEVICE": "/nonexistent/kvm"})
    assert inspected.returncode == booted.returncode == 2
    lines = inspected.stderr.decode().splitlines()
    assert len(lines) == 1 and lines[0].startswith("kvmrun: error: ") and inspected.stdout == b""
    assert inspected.stderr == booted.stderr


def test_a_bad_image_is_one_line(tmp_path):
    bad = tmp_path / "bad.elf"
    bad.write_bytes(b"\x7fELF\x02\x01\x01" + bytes(9))
    code, out, err = invoke("inspect", str(bad))
    assert code == 2 and out == "" and err.count("\n") == 1 and err.startswith(f"kvmrun: error: {bad}: ")


def test_inspect_accepts_every_boot_option():
    boot_flags = {param.name for param in main.commands["boot"].params} - {"screen"}
    inspect_flags = {param.name for param in main.commands["inspect"].params} - {"as_json"}
    assert boot_flags == inspect_flags


def test_inspect_never_opens_dev_kvm(monkeypatch):
    opened = []
    real_open, real_os_open = builtins.open, os.open

    def watch(path, *args, **kwargs):
        opened.append(os.fspath(path) if isinstance(path, (str, bytes, os.PathLike)) else path)
        return (real_os_open if watch.os else real_open)(path, *args, **kwargs)

    def watched_open(path, *args, **kwargs):
        watch.os = False
        return watch(path, *args, **kwargs)

    def watched_os_open(path, *args, **kwargs):
        watch.os = True
        return watch(path, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", watched_open)
    monkeypatch.setattr(os, "open", watched_os_open)
    monkeypatch.setattr(io, "open", watched_open)
    import kvmrun.kvm.system
    monkeypatch.setattr(kvmrun.kvm.system, "open_kvm", lambda *a, **k: pytest.fail("inspect opened KVM"))
    for name in ("hello64.elf", "barebones.elf", "hello.img"):
        code, out, err = invoke("inspect", "--json", guest(name))
        assert code == 0, err
    assert opened and not [path for path in opened if str(path).startswith("/dev/")]


def test_inspect_works_where_kvm_is_refused():
    result = run_kvmrun("inspect", guest("hello64.elf"), env={"KVMRUN_KVM_DEVICE": "/nonexistent/kvm"})
    assert result.returncode == 0 and result.stderr == b""


# --- what boot executes -----------------------------------------------------------------------------

@pytest.mark.kvm
def test_reset_state_is_kvms():
    """describe's reset_sregs is what a vCPU KVM has just created reports (real mode keeps most of it)."""
    from kvmrun.kvm.system import open_kvm
    from kvmrun.kvm.vm import Vm
    with open_kvm() as kvm, Vm(kvm) as vm:
        for index in range(2):
            vcpu = vm.create_vcpu(index)
            try:
                kvm_sregs = vcpu.get_sregs()
            finally:
                vcpu.close()
            ours = reset_sregs(index)
            for name in ("cs", "ds", "es", "fs", "gs", "ss", "tr", "ldt"):
                assert segment_fields(getattr(ours, name)) == segment_fields(getattr(kvm_sregs, name)), name
            for name in ("cr0", "cr2", "cr3", "cr4", "cr8", "efer", "apic_base"):
                assert getattr(ours, name) == getattr(kvm_sregs, name), name
            assert (ours.gdt.base, ours.gdt.limit, ours.idt.base, ours.idt.limit) == \
                (kvm_sregs.gdt.base, kvm_sregs.gdt.limit, kvm_sregs.idt.base, kvm_sregs.idt.limit)


@pytest.mark.kvm
@pytest.mark.parametrize("name, options", [
    ("hello64.elf", {"cpus": 2}), ("hello32.elf", {}), ("hello16.bin", {"mode": "real"}),
    ("barebones.elf", {"cpus": 2, "cmdline": "hi"}), ("barebones2.elf", {}), ("pvh.elf", {}), ("hello.img", {}),
])
def test_the_plan_is_what_boot_executes(name, options, monkeypatch):
    """Boot the guest for real, recording what boot gives KVM (each vCPU's KVM_SET_REGS and
    KVM_SET_SREGS), the setup it writes and the devices it registers, and compare with inspect's plan."""
    import kvmrun
    import kvmrun.machine as machine
    from kvmrun.kvm.vcpu import Vcpu
    regs, sregs, setups = {}, {}, []
    set_regs, set_sregs, apply = Vcpu.set_regs, Vcpu.set_sregs, machine.apply_setup

    def record_regs(vcpu, value):
        # The first is boot's; a BIOS call sets the caller's registers later on.
        regs.setdefault(vcpu.index, {field: getattr(value, field) for field in GENERAL_REGISTERS})
        return set_regs(vcpu, value)

    def record_sregs(vcpu, value):
        sregs.setdefault(vcpu.index, value)
        return set_sregs(vcpu, value)

    def record_setup(setup, mem):
        setups.append(setup)
        return apply(setup, mem)

    monkeypatch.setattr(Vcpu, "set_regs", record_regs)
    monkeypatch.setattr(Vcpu, "set_sregs", record_sregs)
    monkeypatch.setattr(machine, "apply_setup", record_setup)
    kvmrun.run(guest(name), timeout=20, stdin=b"", **options)
    plan = plan_of(name, **options)
    assert len(setups) == 1 and sorted(regs) == sorted(sregs) == list(range(len(plan["vcpus"])))
    for vcpu in plan["vcpus"]:
        assert vcpu["regs"] == regs[vcpu["index"]]
        applied = sregs[vcpu["index"]]
        for segment in ("cs", "ds", "es", "fs", "gs", "ss", "tr", "ldt"):
            assert vcpu["sregs"][segment] == {field: getattr(getattr(applied, segment), field)
                                              for field in vcpu["sregs"][segment]}, segment
        for register in ("cr0", "cr4", "efer"):
            assert vcpu["sregs"][register]["value"] == getattr(applied, register)
        assert (vcpu["sregs"]["cr3"], vcpu["sregs"]["apic_base"]) == (applied.cr3, applied.apic_base)
        assert vcpu["sregs"]["gdt"] == {"base": applied.gdt.base, "limit": applied.gdt.limit}
        assert vcpu["sregs"]["idt"] == {"base": applied.idt.base, "limit": applied.idt.limit}
    # The blobs boot wrote are those inspect described (a host without 1 GiB pages gets the fallback's
    # page tables: inspect names those too).
    written = describe_setup(boot_config(guest(name), options), plan_image_for(boot_config(guest(name), options)),
                             setups[0])
    assert written["segments"] == plan["segments"]
    tables = plan["page_tables"]
    if tables is not None and "without_1g_pages" in tables and written["page_tables"]["tables"] != tables["tables"]:
        other = tables["without_1g_pages"]
        assert (written["page_tables"]["tables"]["start"], written["page_tables"]["tables"]["end"]) == \
            (other["start"], other["end"])
    else:
        assert written["structures"] == plan["structures"]
        assert written["gdt"] == plan["gdt"]


def test_the_readme_example_is_what_inspect_prints():
    from test_readme import readme_block
    block = readme_block("$ kvmrun inspect build/guests/hello64.elf")
    text, json_part = block.split("$ kvmrun inspect --json", 1)
    path = guest("hello64.elf")
    result = run_kvmrun("inspect", path, env={"COLUMNS": "100"})
    printed = [line.rstrip() for line in result.stdout.decode().replace(path, "build/guests/hello64.elf").splitlines()]
    expected = [line for line in text.splitlines()[1:] if line != "..."]
    assert all(line in printed for line in expected), [line for line in expected if line not in printed]
    positions = [printed.index(line) for line in expected]
    assert positions == sorted(positions)
    plan = plan_of("barebones.elf", cpus=2)
    shown = [json.dumps([v["runnable"], v["regs"]["rax"], v["points_to"]], separators=(",", ":"))
             for v in plan["vcpus"]]
    assert json_part.strip().splitlines()[1:] == shown
