"""The MP table (MPS 1.4): every field at its offset, the checksums, the entries in the spec's order,
and a kernel-style search and walk finding the machine KVM gives the guest."""
import struct
from typing import Dict, List, NamedTuple

import pytest
from hypothesis import given, strategies as st

from kvmrun import layout
from kvmrun.boot.protocols.pc import pc_setup
from kvmrun.errors import ConfigError
from kvmrun.options import OptionError
from kvmrun.platform.mptable import MAX_CPUS, TABLE_ROOM, mp_table_bytes, table_size

ADDR = layout.MP_TABLE_ADDR


def test_two_vcpus_byte_for_byte():
    table = mp_table_bytes(2, ADDR)
    # Floating pointer (spec 4.1): signature, table address, length in paragraphs, revision,
    # checksum, feature bytes 1-5.
    assert table[0:4] == b"_MP_"
    assert table[4:8] == (ADDR + 16).to_bytes(4, "little")
    assert table[8] == 1
    assert table[9] == 4
    assert sum(table[0:16]) % 256 == 0
    assert table[11:16] == bytes(5)                   # a table follows; virtual wire mode, no IMCR
    header = table[16:60]
    # Configuration table header (spec 4.2).
    assert header[0:4] == b"PCMP"
    assert header[4:6] == (44 + 2 * 20 + 8 + 8 + 15 * 8 + 2 * 8).to_bytes(2, "little")   # 236
    assert header[6] == 4
    assert header[8:16] == b"KVMRUN  "
    assert header[16:28] == b"PC          "
    assert header[28:32] == bytes(4)                  # no OEM table
    assert header[32:34] == bytes(2)
    assert header[34:36] == (2 + 1 + 1 + 15 + 2).to_bytes(2, "little")    # entry count 21
    assert header[36:40] == bytes.fromhex("0000e0fe")  # local APICs at 0xFEE00000
    assert header[40:44] == bytes(4)                  # no extended table; reserved
    body = table[60:]
    # Processor entries (spec 4.3.1): type, APIC ID, APIC version, flags (EN, BP), signature,
    # feature flags, 8 reserved bytes.
    assert body[0:20] == bytes.fromhex("00 00 14 03 00060000 01020000") + bytes(8)
    assert body[20:40] == bytes.fromhex("00 01 14 01 00060000 01020000") + bytes(8)
    # Bus entry (4.3.2): type, bus ID, "ISA   ".
    assert body[40:48] == b"\x01\x00ISA   "
    # IOAPIC entry (4.3.3): type, ID = 2 (after the processors' 0 and 1), version 0x11, EN, address.
    assert body[48:56] == bytes.fromhex("02 02 11 01 0000c0fe")
    # I/O interrupt entries (4.3.4): type, INT, flags (conform to bus), ISA bus, IRQ, IOAPIC 2, INTIN.
    interrupts = body[56:56 + 15 * 8]
    assert [interrupts[i:i + 8] for i in range(0, len(interrupts), 8)] == [
        bytes([3, 0, 0, 0, 0, irq, 2, irq]) for irq in (0, 1, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15)]
    # Local interrupt entries (4.3.5): ExtINT to the BSP's LINT0, NMI to every local APIC's LINT1.
    assert body[176:184] == bytes([4, 3, 0, 0, 0, 0, 0x00, 0])
    assert body[184:192] == bytes([4, 1, 0, 0, 0, 0, 0xFF, 1])
    assert len(body) == 192
    assert sum(table[16:]) % 256 == 0                 # header checksum covers the base table


def test_the_table_points_at_itself_wherever_it_is_placed():
    table = mp_table_bytes(1, 0x1000)
    assert struct.unpack_from("<I", table, 4)[0] == 0x1010


@pytest.mark.parametrize("cpus", [1, 2, 7, MAX_CPUS])
def test_checksums_sum_to_zero(cpus):
    table = mp_table_bytes(cpus, ADDR)
    assert sum(table[:16]) % 256 == 0
    length = struct.unpack_from("<H", table, 16 + 4)[0]
    assert 16 + length == len(table) == table_size(cpus)
    assert sum(table[16:16 + length]) % 256 == 0


def test_max_cpus_is_what_the_kib_below_640_kib_holds():
    assert TABLE_ROOM == 1024
    # 16 + 44 + 20 n + 8 (bus) + 8 (IOAPIC) + 15 * 8 (ISA IRQs but 2) + 2 * 8 (LINT0, LINT1) <= 1024
    assert MAX_CPUS == 40
    assert len(mp_table_bytes(MAX_CPUS, ADDR)) <= TABLE_ROOM < table_size(MAX_CPUS + 1)


def test_more_vcpus_than_fit_are_refused_naming_the_option_and_the_limit():
    with pytest.raises(OptionError) as err:
        mp_table_bytes(MAX_CPUS + 1, ADDR)
    assert err.value.option == "cpus"
    assert isinstance(err.value, ConfigError)
    assert str(err.value) == ("cpus must be at most 40 for a PC kernel (multiboot, multiboot2, PVH): its MP "
                              "table fills the 1024 bytes below 640 KiB with 40 processors at most, not 41")


def test_the_pc_setup_refuses_them_too_and_places_the_table_in_its_reserved_kib():
    with pytest.raises(OptionError):
        pc_setup((), (), 0x100000, {}, MAX_CPUS + 1)
    setup = pc_setup((), (), 0x100000, {}, MAX_CPUS)
    [blob] = [blob for blob in setup.blobs if blob.name == "MP table"]
    [reserved] = [res for res in setup.reserved if res.what == "MP table"]
    assert (blob.addr, blob.data) == (ADDR, mp_table_bytes(MAX_CPUS, ADDR))
    assert reserved.start <= blob.addr and blob.end <= reserved.end == layout.EBDA_END


@pytest.mark.parametrize("cpus, addr", [(0, ADDR), (1, ADDR + 8), (1, (1 << 32) - 16)])
def test_a_table_no_kernel_could_find_is_a_bug(cpus, addr):
    with pytest.raises(ValueError):
        mp_table_bytes(cpus, addr)


# --- a kernel's view ------------------------------------------------------------------------------

ENTRY_SIZES = {0: 20, 1: 8, 2: 8, 3: 8, 4: 8}


class Machine(NamedTuple):
    cpus: List[Dict]
    buses: Dict[int, bytes]
    ioapics: Dict[int, Dict]
    irqs: Dict[int, tuple]                # ISA IRQ -> (IOAPIC ID, INTIN)
    local: List[tuple]                    # (type, destination APIC, LINTIN)
    lapic: int


def kernel_finds(memory: bytes, base: int) -> Machine:
    """Walk `memory` (guest-physical from `base`) as Linux's mpparse does: the EBDA segment from the
    BIOS data area, "_MP_" on a 16-byte boundary in its first KiB, both checksums, the header, then
    each entry by its type's size until the base table's length, types never going down."""
    def at(addr: int, size: int) -> bytes:
        return memory[addr - base:addr - base + size]

    ebda = struct.unpack("<H", at(layout.BDA_EBDA_SEGMENT, 2))[0] << 4
    for addr in range(ebda, ebda + 1024, 16):
        pointer = at(addr, 16)
        if pointer[:4] == b"_MP_" and pointer[8] == 1 and sum(pointer) % 256 == 0:
            break
    else:
        raise AssertionError("no floating pointer in the EBDA's first KiB")
    assert pointer[9] in (1, 4) and pointer[11] == 0
    table_addr = struct.unpack_from("<I", pointer, 4)[0]
    signature, length, revision = struct.unpack("<4sHB", at(table_addr, 7))
    assert signature == b"PCMP" and revision == 4
    assert sum(at(table_addr, length)) % 256 == 0
    count, lapic = struct.unpack_from("<HI", at(table_addr, 44), 34)
    machine = Machine([], {}, {}, {}, [], lapic)
    addr, end, last_type = table_addr + 44, table_addr + length, 0
    for _ in range(count):
        kind = at(addr, 1)[0]
        assert kind >= last_type, "entries must be grouped by type in ascending order"
        last_type = kind
        entry = at(addr, ENTRY_SIZES[kind])
        assert addr + len(entry) <= end
        if kind == 0:
            _, apic_id, version, flags, signature_, features = struct.unpack("<BBBBII8x", entry)
            machine.cpus.append(dict(id=apic_id, version=version, enabled=bool(flags & 1), bsp=bool(flags & 2),
                                     signature=signature_, features=features))
        elif kind == 1:
            machine.buses[entry[1]] = entry[2:8]
        elif kind == 2:
            _, apic_id, version, flags, address = struct.unpack("<BBBBI", entry)
            machine.ioapics[apic_id] = dict(version=version, enabled=bool(flags & 1), address=address)
        elif kind == 3:
            _, irq_type, flags, bus, irq, apic, pin = struct.unpack("<BBHBBBB", entry)
            assert (irq_type, flags, machine.buses[bus]) == (0, 0, b"ISA   ")
            assert irq not in machine.irqs
            machine.irqs[irq] = (apic, pin)
        else:
            _, irq_type, flags, bus, irq, apic, pin = struct.unpack("<BBHBBBB", entry)
            machine.local.append((irq_type, apic, pin))
        addr += len(entry)
    assert addr == end, "the entries fill the base table exactly"
    return machine


def memory_with_table(cpus: int) -> bytes:
    """Guest RAM's first MiB as pc_setup leaves it: BIOS data area words and the MP table."""
    memory = bytearray(layout.HIGH_MEMORY)
    for blob in pc_setup((), (), 0x100000, {}, cpus).blobs:
        memory[blob.addr:blob.addr + len(blob.data)] = blob.data
    return bytes(memory)


@given(st.integers(1, MAX_CPUS))
def test_a_kernel_finds_every_vcpu_the_ioapic_and_kvms_routing(cpus):
    machine = kernel_finds(memory_with_table(cpus), 0)
    assert [cpu["id"] for cpu in machine.cpus] == list(range(cpus))
    assert [cpu["bsp"] for cpu in machine.cpus] == [True] + [False] * (cpus - 1)
    assert all(cpu["enabled"] and cpu["version"] == 0x14 for cpu in machine.cpus)
    assert machine.lapic == 0xFEE00000
    assert machine.buses == {0: b"ISA   "}
    assert machine.ioapics == {cpus: dict(version=0x11, enabled=True, address=0xFEC00000)}
    # KVM's default routing: ISA IRQ n on IOAPIC pin n (the PIT's IRQ 0 on pin 0); IRQ 2, the cascade, unnamed.
    assert machine.irqs == {irq: (cpus, irq) for irq in range(16) if irq != 2}
    assert machine.local == [(3, 0, 0), (1, 0xFF, 1)]
    assert cpus not in {cpu["id"] for cpu in machine.cpus}          # APIC IDs are unique


def test_the_walk_would_notice_a_corrupt_byte():
    memory = bytearray(memory_with_table(2))
    memory[ADDR + 16 + 60] ^= 1                       # one byte of the first processor entry
    with pytest.raises(AssertionError):
        kernel_finds(bytes(memory), 0)
