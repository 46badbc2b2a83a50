"""What every object of the binding that owns one file descriptor shares: closing it once, and
closing it on the way out of a `with` block."""


class FdOwner:
    fd: int = -1

    def close(self) -> None:
        if self.fd >= 0:
            fd, self.fd = self.fd, -1
            import os
            os.close(fd)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
