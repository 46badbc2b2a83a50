"""Letting KVM absorb guest writes that need no answer, in one object: POST codes through an
ioeventfd (they never leave the kernel), COM1's THR bytes through the coalesced ring (drained in
order before any other exit is handled, and by the host loop while the guest runs).

A port is absorbed only once it proves busy: absorbing is cheap to set up but makes tearing the VM
down ~15 ms slower on this host (measured), while each absorbed exit saves a few µs: worth it for a
guest that prints kilobytes, not for one that prints a line.

The ring is used with one vCPU only: with four vCPUs writing it at once, this host's KVM handed back
entries with another vCPU's byte, and once lost a whole ring (170 bytes) — measured with
guests/flood64.asm. Plain exits never lose a byte.
"""
from __future__ import annotations

import mmap
import os

from ..devices.bus import IoBus
from ..kvm.abi import Cap
from ..kvm.coalesced import CoalescedRing

TYPE_CHECKING = False     # typing is not imported at run time: ~11 ms of every start (named_tuple.py)
if TYPE_CHECKING:
    from typing import Callable, Dict, Optional

    from ..cleanup import Cleanup

POST_PORT = 0x80
ABSORB_AFTER_EXITS = 4096


class KernelAbsorption:
    """Counts one-byte writes to the ports KVM can absorb and asks KVM to, after `after` of them.
    `live` is True once the coalesced ring holds writes to drain: then every vCPU exit drains it first
    and the device lock is always taken (the host loop drains it too). The vCPU's loop reads `live`
    when it starts; going live kicks the vCPU, so the loop starts again and sees it."""

    def __init__(self, bus: IoBus, lock, stack: Cleanup, kvm, vm, vcpus, com1: int,
                 after: int = ABSORB_AFTER_EXITS):
        self.bus = bus
        self.lock = lock
        self.live = False
        self._ring: Optional[CoalescedRing] = None
        self._post_fd = -1
        absorbers: Dict[int, Callable[[], None]] = {}
        if kvm.check_extension(Cap.KVM_CAP_IOEVENTFD):
            def absorb_post():
                post_fd = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
                stack.callback(os.close, post_fd)
                vm.ioeventfd_pio(POST_PORT, 1, post_fd)
                self._post_fd = post_fd
            absorbers[POST_PORT] = absorb_post
        ring_page = kvm.check_extension(Cap.KVM_CAP_COALESCED_MMIO)
        if len(vcpus) == 1 and ring_page and kvm.check_extension(Cap.KVM_CAP_COALESCED_PIO):
            self._ring = CoalescedRing(vcpus[0].mapping, ring_page, mmap.PAGESIZE)

            def absorb_thr():
                vm.coalesce_pio(com1, 1)
                self.live = True
                vcpus[0].request_stop()       # its loop starts again, draining the ring from now on
            absorbers[com1] = absorb_thr
        for port, absorb in absorbers.items():
            self._count_writes(port, after, absorb)

    def _count_writes(self, port: int, exits: int, absorb: Callable[[], None]) -> None:
        """After `exits` one-byte writes to `port` (from any vCPU), call `absorb` and go back to the
        plain writers."""
        left = [exits]

        def counting(direct: Callable[[int], None]) -> Callable[[int], None]:
            def counting_writer(value: int) -> None:
                direct(value)
                left[0] -= 1
                if left[0] == 0:
                    self.bus.wrap_byte_writers(port, None)
                    absorb()
            return counting_writer

        self.bus.wrap_byte_writers(port, counting)

    def drain(self) -> None:
        """Hand the writes KVM coalesced to their devices, in order (a vCPU thread, after an exit)."""
        ring = self._ring
        if ring is not None and ring.pending():
            with self.lock:
                ring.drain(self.bus.write_block)

    def absorbed(self) -> Dict[str, int]:
        """How many writes KVM took without an exit, by how (--stats; after the run): COM1 bytes kept in
        the coalesced ring, POST codes signalled on the ioeventfd (whose count nobody else reads)."""
        counts = {"coalesced ring (COM1)": self._ring.drained if self._ring is not None else 0,
                  "ioeventfd (POST 0x80)": 0}
        if self._post_fd >= 0:
            try:
                counts["ioeventfd (POST 0x80)"] = os.eventfd_read(self._post_fd)
            except BlockingIOError:          # never signalled
                pass
        return counts

    def drain_if_free(self) -> None:
        """The host loop's drain: never waits for a vCPU holding the devices (that one drains itself)."""
        ring = self._ring
        if self.live and ring is not None and ring.pending() and self.lock.acquire(blocking=False):
            try:
                ring.drain(self.bus.write_block)
            finally:
                self.lock.release()
