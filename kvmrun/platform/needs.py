"""What a boot protocol asks of the platform. A protocol returns it with its boot setup; the
options may override it; it is checked before /dev/kvm is opened. Pure: nothing here touches KVM."""
from __future__ import annotations

from ..errors import ConfigError

TYPE_CHECKING = False     # typing is not imported at run time: ~11 ms of every start (named_tuple.py)
if TYPE_CHECKING:
    from typing import NamedTuple
else:
    from ..named_tuple import NamedTuple

AP_START_ENTRY = "entry"     # every vCPU starts at the entry (kvmrun's ABI)
AP_START_SIPI = "sipi"       # vCPU 0 starts; the others wait for INIT and SIPI from it, as on a PC
AP_START_CHOICES = (AP_START_ENTRY, AP_START_SIPI)


class PlatformNeeds(NamedTuple):
    irqchip: bool = False                 # KVM's in-kernel PICs, IOAPIC, local APICs and PIT
    ap_start: str = AP_START_ENTRY        # how vCPUs other than 0 (the APs) start
    bios: bool = False                    # kvmrun's BIOS services (kvmrun/bios/): a boot disk's


def check_needs(needs: PlatformNeeds) -> None:
    """ConfigError for a combination no machine can provide."""
    if needs.ap_start not in AP_START_CHOICES:
        raise ConfigError(f"ap_start must be one of {', '.join(AP_START_CHOICES)}, not {needs.ap_start!r}")
    if needs.ap_start == AP_START_SIPI and not needs.irqchip:
        raise ConfigError("ap_start 'sipi' needs the irqchip: INIT and SIPI travel between the "
                          "in-kernel local APICs")
