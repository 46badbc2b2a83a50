/* The C floor for kvmrun's benchmarks: the least a KVM runner must do to boot kvmrun's raw long-mode
 * test guests. One memory slot, the same GDT/TSS and identity-mapped page tables as kvmrun, one vCPU
 * with KVM's supported CPUID, COM1 output to stdout, the exit port, HLT. Nothing else.
 *
 *   runner IMAGE [MEMORY_MIB]            raw image loaded at 0x100000, entered in long mode
 *   runner IMAGE MEMORY_MIB irqchip      the same with KVM's in-kernel PICs, IOAPIC, LAPICs and PIT (what
 *                                        kvmrun's --irqchip on creates). HLT then stays in the
 *                                        kernel, so the guest must end through the exit port; the VM is
 *                                        closed explicitly and the time that takes is printed to stderr
 *                                        as "teardown MS" (KVM's own teardown, the floor for kvmrun's).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define LOAD_ADDR 0x100000UL
#define GDT_ADDR 0x500UL
#define TSS_ADDR 0x600UL
#define PT_ADDR 0x1000UL
#define GIB (1UL << 30)

static void die(const char *what)
{
    fprintf(stderr, "runner: %s: %s\n", what, strerror(errno));
    exit(2);
}

static int has_1g_pages(struct kvm_cpuid2 *cpuid)
{
    for (unsigned i = 0; i < cpuid->nent; i++)
        if (cpuid->entries[i].function == 0x80000001)
            return (cpuid->entries[i].edx >> 26) & 1;
    return 0;
}

static void seg(struct kvm_segment *s, uint16_t sel, uint8_t type, int l, int db, int g, uint64_t base,
                uint32_t limit, int system)
{
    memset(s, 0, sizeof(*s));
    s->selector = sel;
    s->type = type;
    s->present = 1;
    s->s = !system;
    s->l = l;
    s->db = db;
    s->g = g;
    s->base = base;
    s->limit = limit;
}

/* Close the VM as kvmrun does (vCPU, its kvm_run, the VM) and say how long KVM took. */
static void teardown(int vm, int vcpu, struct kvm_run *run, int run_size)
{
    struct timespec start, end;
    clock_gettime(CLOCK_MONOTONIC, &start);
    munmap(run, run_size);
    close(vcpu);
    close(vm);
    clock_gettime(CLOCK_MONOTONIC, &end);
    fprintf(stderr, "teardown %.3f\n", (end.tv_sec - start.tv_sec) * 1e3 + (end.tv_nsec - start.tv_nsec) / 1e6);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: runner IMAGE [MEMORY_MIB [irqchip]]\n");
        return 2;
    }
    size_t mem_size = (argc > 2 ? strtoul(argv[2], NULL, 0) : 128) << 20;
    int irqchip = argc > 3 && strcmp(argv[3], "irqchip") == 0;
    int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (kvm < 0)
        die("/dev/kvm");
    int vm = ioctl(kvm, KVM_CREATE_VM, 0);
    if (vm < 0)
        die("KVM_CREATE_VM");
    uint8_t *mem = mmap(NULL, mem_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                        -1, 0);
    if (mem == MAP_FAILED)
        die("mmap");
    struct kvm_userspace_memory_region region = {
        .slot = 0, .guest_phys_addr = 0, .memory_size = mem_size, .userspace_addr = (uint64_t)mem};
    if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &region) < 0)
        die("KVM_SET_USER_MEMORY_REGION");

    int image = open(argv[1], O_RDONLY);
    struct stat st;
    if (image < 0 || fstat(image, &st) < 0)
        die(argv[1]);
    if (read(image, mem + LOAD_ADDR, st.st_size) != st.st_size)
        die("read");
    close(image);

    struct kvm_cpuid2 *cpuid = calloc(1, sizeof(*cpuid) + 256 * sizeof(struct kvm_cpuid_entry2));
    cpuid->nent = 256;
    if (ioctl(kvm, KVM_GET_SUPPORTED_CPUID, cpuid) < 0)
        die("KVM_GET_SUPPORTED_CPUID");

    /* Identity map of the first 4 GiB, as kvmrun builds it. */
    uint64_t *pml4 = (uint64_t *)(mem + PT_ADDR), *pdpt = (uint64_t *)(mem + PT_ADDR + 0x1000);
    pml4[0] = (PT_ADDR + 0x1000) | 3;
    for (uint64_t g = 0; g < 4; g++) {
        if (has_1g_pages(cpuid)) {
            pdpt[g] = g * GIB | 0x83;
        } else {
            uint64_t pd_addr = PT_ADDR + 0x2000 + g * 0x1000;
            uint64_t *pd = (uint64_t *)(mem + pd_addr);
            pdpt[g] = pd_addr | 3;
            for (uint64_t i = 0; i < 512; i++)
                pd[i] = (g * GIB + (i << 21)) | 0x83;
        }
    }
    uint64_t *gdt = (uint64_t *)(mem + GDT_ADDR);
    gdt[1] = 0x00AF9B000000FFFF;                        /* 64-bit code */
    gdt[2] = 0x00CF93000000FFFF;                        /* data */
    gdt[3] = 0x00CF9B000000FFFF;                        /* 32-bit code */
    gdt[4] = 0x00008B0006000067;                        /* busy TSS at 0x600 */
    *(uint16_t *)(mem + TSS_ADDR + 102) = 104;

    if (irqchip) {
        struct kvm_pit_config pit = {.flags = KVM_PIT_SPEAKER_DUMMY};
        if (ioctl(vm, KVM_CREATE_IRQCHIP, 0) < 0)
            die("KVM_CREATE_IRQCHIP");
        if (ioctl(vm, KVM_CREATE_PIT2, &pit) < 0)
            die("KVM_CREATE_PIT2");
    }

    int vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
    if (vcpu < 0)
        die("KVM_CREATE_VCPU");
    if (ioctl(vcpu, KVM_SET_CPUID2, cpuid) < 0)
        die("KVM_SET_CPUID2");
    int run_size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
    struct kvm_run *run = mmap(NULL, run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
    if (run == MAP_FAILED)
        die("mmap kvm_run");

    struct kvm_sregs sregs;
    if (ioctl(vcpu, KVM_GET_SREGS, &sregs) < 0)
        die("KVM_GET_SREGS");
    seg(&sregs.cs, 0x08, 0xB, 1, 0, 1, 0, 0xFFFFFFFF, 0);
    seg(&sregs.ds, 0x10, 0x3, 0, 1, 1, 0, 0xFFFFFFFF, 0);
    sregs.es = sregs.fs = sregs.gs = sregs.ss = sregs.ds;
    seg(&sregs.tr, 0x20, 0xB, 0, 0, 0, TSS_ADDR, 103, 1);
    memset(&sregs.ldt, 0, sizeof(sregs.ldt));
    sregs.ldt.type = 2;
    sregs.ldt.unusable = 1;
    sregs.gdt.base = GDT_ADDR;
    sregs.gdt.limit = 0x2F;
    sregs.idt.base = 0;
    sregs.idt.limit = 0;
    sregs.cr0 = 0x80010033;
    sregs.cr3 = PT_ADDR;
    sregs.cr4 = 0x620;
    sregs.efer = 0x500;
    if (ioctl(vcpu, KVM_SET_SREGS, &sregs) < 0)
        die("KVM_SET_SREGS");
    struct kvm_regs regs = {.rip = LOAD_ADDR, .rflags = 2, .rdi = 0, .rsi = 1, .rdx = mem_size >> 10,
                            .rsp = mem_size};
    if (ioctl(vcpu, KVM_SET_REGS, &regs) < 0)
        die("KVM_SET_REGS");

    static char out[1 << 16];
    setvbuf(stdout, out, _IOFBF, sizeof(out));
    for (;;) {
        if (ioctl(vcpu, KVM_RUN, 0) < 0) {
            if (errno == EINTR)
                continue;
            die("KVM_RUN");
        }
        switch (run->exit_reason) {
        case KVM_EXIT_IO: {
            uint8_t *data = (uint8_t *)run + run->io.data_offset;
            if (run->io.direction == KVM_EXIT_IO_OUT) {
                if (run->io.port == 0x3F8) {
                    fwrite(data, run->io.size, run->io.count, stdout);
                } else if (run->io.port == 0xF4) {
                    fflush(stdout);
                    int status = data[0];
                    if (irqchip)
                        teardown(vm, vcpu, run, run_size);
                    return status;
                }
            } else {
                /* LSR: THR empty; anything else: all ones */
                memset(data, run->io.port == 0x3FD ? 0x60 : 0xFF, run->io.size * run->io.count);
            }
            break;
        }
        case KVM_EXIT_HLT:
            fflush(stdout);
            return 0;
        default:
            fflush(stdout);
            fprintf(stderr, "runner: exit reason %u\n", run->exit_reason);
            return 1;
        }
    }
}
