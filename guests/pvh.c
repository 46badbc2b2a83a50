/* A PVH kernel (entry and ELF note in pvh_boot.asm): it checks hvm_start_info's magic and prints,
 * one fact a line, to the screen and COM1: magic, version, flags, the command line, the RSDP, each
 * memory map entry (version 1) and each module (range, command line, first bytes). The layout is
 * xen/include/public/arch-x86/hvm/start_info.h. A failed check prints "FAIL: ..." and exits with
 * FAIL_STATUS; otherwise the run ends in cli; hlt. */
#include "pcterm.h"

#define XEN_HVM_START_MAGIC_VALUE 0x336ec578

struct hvm_start_info {
    uint32_t magic;
    uint32_t version;             /* 1: the memory map fields are there */
    uint32_t flags;
    uint32_t nr_modules;
    uint64_t modlist_paddr;
    uint64_t cmdline_paddr;
    uint64_t rsdp_paddr;
    uint64_t memmap_paddr;        /* version 1 */
    uint32_t memmap_entries;
    uint32_t reserved;
};

struct hvm_modlist_entry {
    uint64_t paddr;
    uint64_t size;
    uint64_t cmdline_paddr;
    uint64_t reserved;
};

struct hvm_memmap_table_entry {
    uint64_t addr;
    uint64_t size;
    uint32_t type;
    uint32_t reserved;
};

#define MAX_LISTED 32
#define CONTENT_SHOWN 16

/* A physical address this kernel (paging off) can reach, or fail. */
static const void *reachable(uint64_t paddr, const char *what)
{
    if (paddr >> 32)
        fail(what, (uint32_t)(paddr >> 32));
    return (const void *)(uint32_t)paddr;
}

static void print_cmdline(const char *label, uint64_t paddr)
{
    kputs(label);
    if (paddr) {
        kput_string(reachable(paddr, "command line above 4 GiB:"), 200);
    } else {
        kputs("none");
    }
}

void pvh_main(const struct hvm_start_info *si)
{
    terminal_initialize();
    terminal_setcolor(vga_entry_color(VGA_YELLOW, VGA_BLACK));
    kputs("pvh: PVH kernel\n");
    terminal_setcolor(vga_entry_color(VGA_LIGHT_GREY, VGA_BLACK));
    kputs("start_info at ");
    kput_hex((uint32_t)si);
    kputc('\n');
    if (si->magic != XEN_HVM_START_MAGIC_VALUE)
        fail("hvm_start_info magic is not 0x336ec578:", si->magic);
    kputs("magic ");
    kput_hex(si->magic);
    kputs(" ok, version ");
    kput_dec(si->version);
    kputs(", flags ");
    kput_hex(si->flags);
    kputc('\n');
    print_cmdline("cmdline ", si->cmdline_paddr);
    kputc('\n');
    kputs("rsdp ");
    kput_hex64(si->rsdp_paddr);
    kputc('\n');

    if (si->version >= 1) {
        const struct hvm_memmap_table_entry *map = reachable(si->memmap_paddr, "memory map above 4 GiB:");
        for (uint32_t i = 0; i < si->memmap_entries && i < MAX_LISTED; i++) {
            kputs("memmap ");
            kput_hex64(map[i].addr);
            kputs(" +");
            kput_hex64(map[i].size);
            kputs(" type ");
            kput_dec(map[i].type);
            kputc('\n');
        }
        kputs("memmap entries: ");
        kput_dec(si->memmap_entries);
        kputc('\n');
    } else {
        kputs("no memmap (version 0)\n");
    }

    const struct hvm_modlist_entry *mods = si->nr_modules ? reachable(si->modlist_paddr, "module list above 4 GiB:") : 0;
    for (uint32_t i = 0; i < si->nr_modules && i < MAX_LISTED; i++) {
        kputs("module ");
        kput_dec(i);
        kputc(' ');
        kput_hex64(mods[i].paddr);
        kputs(" +");
        kput_hex64(mods[i].size);
        print_cmdline(" ", mods[i].cmdline_paddr);
        kputs(" starts '");
        uint64_t size = mods[i].size;
        kput_bytes(reachable(mods[i].paddr, "module above 4 GiB:"), size < CONTENT_SHOWN ? (size_t)size : CONTENT_SHOWN);
        kputs("'\n");
    }
    kputs("modules: ");
    kput_dec(si->nr_modules);
    kputc('\n');
    terminal_setcolor(vga_entry_color(VGA_YELLOW, VGA_BLACK));
    kputs("pvh: done\n");
    terminal_update_cursor();
}
