"""What every PC boot protocol must do with hostile input, shared by the multiboot, multiboot2 and PVH
property tests: refuse it with one line, or plan a setup that passes check_setup inside RAM below 4 GiB."""
from kvmrun.boot.protocols.pc import Module
from kvmrun.boot.setup import check_setup
from kvmrun.errors import LoaderError
from kvmrun.memory import RamLayout

MiB = 1 << 20


def refused_cleanly_or_inside_ram(probe, plan, image: bytes, module_data, cmdline: str, magic: int) -> None:
    ram = RamLayout(16 * MiB)
    try:
        head = probe(image)
        if head is None:
            return
        modules = tuple(Module(f"m{i}", data, f"m{i} arg") for i, data in enumerate(module_data))
        setup = plan(head, image, "kernel", ram, 2, cmdline, modules)
        check_setup(setup, ram)
    except LoaderError as err:
        assert "\n" not in str(err)
        return
    for blob in setup.blobs:
        assert ram.contains(blob.addr, blob.size) and blob.end <= 1 << 32
    assert setup.vcpus[0].regs["rax"] == magic
