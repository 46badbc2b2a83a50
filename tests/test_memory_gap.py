"""--memory just above 3 GiB: RAM continues at 4 GiB with less there than the vCPU stacks need."""
import re

import pytest

from conftest import guest, run_kvmrun


@pytest.mark.kvm
def test_memory_3g_plus_4k_boots_with_the_stack_below_3gib():
    """3G+4K once failed with "1 vCPU stacks of 64 KiB do not fit in 3221229568 bytes of RAM"."""
    result = run_kvmrun("boot", "--memory", "3145732K", guest("abi64.elf"))
    assert result.returncode == 0, result.stderr.decode()
    state = dict(re.findall(r"(\w+)=(\S+)", result.stdout.decode()))
    assert (state["rdx"], state["rsp"], state["high"]) == ("0x300004", "0xc0000000", "ok")
