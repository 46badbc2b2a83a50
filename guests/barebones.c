/* A multiboot (v1) kernel in the OSDev "Bare Bones" style (entry in mb_boot.asm): it checks the
 * boot loader's magic, then prints what the multiboot information says (Multiboot Specification
 * 0.6.96, section 3.3) to the screen and COM1, one fact a line:
 *   magic, flags, mem_lower/mem_upper, the boot device, cmdline, each memory map entry, each module
 *   (its range, string and first bytes), the boot loader's name.
 * A check that fails prints "FAIL: ..." and exits with FAIL_STATUS; otherwise the run ends in
 * cli; hlt. */
#include "pcterm.h"

#define MULTIBOOT_BOOTLOADER_MAGIC 0x2BADB002

#define MB_INFO_MEMORY (1 << 0)
#define MB_INFO_BOOTDEV (1 << 1)
#define MB_INFO_CMDLINE (1 << 2)
#define MB_INFO_MODS (1 << 3)
#define MB_INFO_MEM_MAP (1 << 6)
#define MB_INFO_BOOT_LOADER_NAME (1 << 9)

struct multiboot_info {
    uint32_t flags;
    uint32_t mem_lower, mem_upper;
    uint32_t boot_device;
    uint32_t cmdline;
    uint32_t mods_count, mods_addr;
    uint32_t syms[4];
    uint32_t mmap_length, mmap_addr;
    uint32_t drives_length, drives_addr;
    uint32_t config_table;
    uint32_t boot_loader_name;
    uint32_t apm_table;
} __attribute__((packed));

struct multiboot_mmap_entry {
    uint32_t size;                /* of the rest of the entry: the next is at +size+4 */
    uint64_t addr, len;
    uint32_t type;
} __attribute__((packed));

struct multiboot_module {
    uint32_t mod_start, mod_end;
    uint32_t string;
    uint32_t reserved;
} __attribute__((packed));

#define MAX_LISTED 32             /* a broken count must not make the kernel print for ever */
#define CONTENT_SHOWN 16

/* Is [start, end) inside a memory map entry of available RAM (type 1)? */
static int in_available_ram(const struct multiboot_info *info, uint64_t start, uint64_t end)
{
    if (!(info->flags & MB_INFO_MEM_MAP))
        return 1;
    uint32_t offset = 0;
    for (int n = 0; n < MAX_LISTED && offset < info->mmap_length; n++) {
        const struct multiboot_mmap_entry *e = (const void *)(info->mmap_addr + offset);
        if (e->type == 1 && e->addr <= start && end <= e->addr + e->len)
            return 1;
        offset += e->size + 4;
    }
    return 0;
}

static void print_memory_map(const struct multiboot_info *info)
{
    uint32_t offset = 0;
    int n = 0;
    while (offset < info->mmap_length && n < MAX_LISTED) {
        const struct multiboot_mmap_entry *e = (const void *)(info->mmap_addr + offset);
        if (e->size < 20)
            fail("memory map entry size below 20:", e->size);
        kputs("mmap ");
        kput_hex64(e->addr);
        kputs(" +");
        kput_hex64(e->len);
        kputs(" type ");
        kput_dec(e->type);
        kputc('\n');
        offset += e->size + 4;
        n++;
    }
    kputs("mmap entries: ");
    kput_dec((uint32_t)n);
    kputc('\n');
}

static void print_modules(const struct multiboot_info *info)
{
    const struct multiboot_module *mods = (const void *)info->mods_addr;
    uint32_t count = info->mods_count < MAX_LISTED ? info->mods_count : MAX_LISTED;
    for (uint32_t i = 0; i < count; i++) {
        const struct multiboot_module *m = &mods[i];
        kputs("module ");
        kput_dec(i);
        kputc(' ');
        kput_hex(m->mod_start);
        kputc('-');
        kput_hex(m->mod_end);
        kputc(' ');
        kput_string((const char *)m->string, 200);
        uint32_t size = m->mod_end - m->mod_start;
        kputs(" starts '");
        kput_bytes((const void *)m->mod_start, size < CONTENT_SHOWN ? size : CONTENT_SHOWN);
        kputs("'\n");
        if (m->mod_end < m->mod_start)
            fail("module ends before it starts:", m->mod_end);
        if (m->mod_start & 0xFFF)    /* the header asked for MBALIGN */
            fail("module not page-aligned:", m->mod_start);
        if (!in_available_ram(info, m->mod_start, m->mod_end))
            fail("module outside available RAM:", m->mod_start);
    }
    kputs("modules: ");
    kput_dec(info->mods_count);
    kputc('\n');
}

void kernel_main(uint32_t magic, const struct multiboot_info *info)
{
    terminal_initialize();
    terminal_setcolor(vga_entry_color(VGA_LIGHT_GREEN, VGA_BLACK));
    kputs("barebones: multiboot kernel\n");
    terminal_setcolor(vga_entry_color(VGA_LIGHT_GREY, VGA_BLACK));
    if (magic != MULTIBOOT_BOOTLOADER_MAGIC)
        fail("EAX is not the multiboot magic:", magic);
    kputs("magic ");
    kput_hex(magic);
    kputs(" ok\n");
    kputs("info at ");
    kput_hex((uint32_t)info);
    kputs(" flags ");
    kput_hex(info->flags);
    kputc('\n');

    if (!(info->flags & MB_INFO_MEMORY))    /* the header's MEMINFO makes it required */
        fail("no mem_lower/mem_upper though the header asks for them, flags", info->flags);
    kputs("mem_lower ");
    kput_dec(info->mem_lower);
    kputs(" KiB, mem_upper ");
    kput_dec(info->mem_upper);
    kputs(" KiB\n");

    if (info->flags & MB_INFO_BOOTDEV) {
        kputs("boot device ");
        kput_hex(info->boot_device);
        kputc('\n');
    }
    if (info->flags & MB_INFO_CMDLINE) {
        kputs("cmdline ");
        kput_string((const char *)info->cmdline, 200);
        kputc('\n');
    } else {
        kputs("no cmdline\n");
    }
    if (info->flags & MB_INFO_MEM_MAP)
        print_memory_map(info);
    else
        kputs("no memory map\n");
    if (info->flags & MB_INFO_MODS)
        print_modules(info);
    else
        kputs("no modules\n");
    if (info->flags & MB_INFO_BOOT_LOADER_NAME) {
        kputs("boot loader ");
        kput_string((const char *)info->boot_loader_name, 80);
        kputc('\n');
    }
    terminal_setcolor(vga_entry_color(VGA_LIGHT_GREEN, VGA_BLACK));
    kputs("barebones: done\n");
    terminal_update_cursor();
}
