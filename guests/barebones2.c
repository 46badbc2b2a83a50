/* The Bare Bones kernel for multiboot2 (entry and header in mb2_boot.asm): it checks the magic,
 * walks the boot information's tags (Multiboot2 Specification 2.0, 3.6) and prints, one fact a
 * line, to the screen and COM1: the command line, the boot loader's name, mem_lower/mem_upper, the
 * boot device, each memory map entry, each module (range, string, first bytes) and any other tag by
 * type and size.
 * It checks the tags' layout (8-byte aligned, the end tag closing total_size) and that the
 * information the header's request tag requires is there. A failed check prints "FAIL: ..." and
 * exits with FAIL_STATUS; otherwise the run ends in cli; hlt. */
#include "pcterm.h"

#define MULTIBOOT2_BOOTLOADER_MAGIC 0x36D76289

#define TAG_END 0
#define TAG_CMDLINE 1
#define TAG_BOOT_LOADER_NAME 2
#define TAG_MODULE 3
#define TAG_BASIC_MEMINFO 4
#define TAG_BOOTDEV 5
#define TAG_MMAP 6

struct boot_info {
    uint32_t total_size;
    uint32_t reserved;
};

struct tag {
    uint32_t type;
    uint32_t size;
};

struct tag_string {
    struct tag tag;
    char string[];
};

struct tag_module {
    struct tag tag;
    uint32_t mod_start, mod_end;
    char string[];
};

struct tag_basic_meminfo {
    struct tag tag;
    uint32_t mem_lower, mem_upper;
};

struct tag_bootdev {
    struct tag tag;
    uint32_t biosdev, partition, sub_partition;
};

struct mmap_entry {
    uint64_t addr, len;
    uint32_t type;
    uint32_t zero;
};

struct tag_mmap {
    struct tag tag;
    uint32_t entry_size, entry_version;
    /* entries follow, entry_size bytes apart */
};

#define MAX_TAGS 64               /* a broken walk must not make the kernel print for ever */
#define CONTENT_SHOWN 16

static uint32_t modules;

static void print_mmap(const struct tag_mmap *t)
{
    kputs("mmap entry_size ");
    kput_dec(t->entry_size);
    kputs(" version ");
    kput_dec(t->entry_version);
    kputc('\n');
    if (t->entry_size < sizeof(struct mmap_entry) || t->entry_size % 8)
        fail("memory map entry_size is not a multiple of 8 of at least 24:", t->entry_size);
    const char *entries = (const char *)(t + 1);
    uint32_t count = (t->tag.size - sizeof *t) / t->entry_size;
    for (uint32_t i = 0; i < count && i < MAX_TAGS; i++) {
        const struct mmap_entry *e = (const void *)(entries + i * t->entry_size);
        kputs("mmap ");
        kput_hex64(e->addr);
        kputs(" +");
        kput_hex64(e->len);
        kputs(" type ");
        kput_dec(e->type);
        kputc('\n');
    }
    kputs("mmap entries: ");
    kput_dec(count);
    kputc('\n');
}

static void print_module(const struct tag_module *t)
{
    kputs("module ");
    kput_dec(modules++);
    kputc(' ');
    kput_hex(t->mod_start);
    kputc('-');
    kput_hex(t->mod_end);
    kputc(' ');
    kput_string(t->string, 200);
    uint32_t size = t->mod_end - t->mod_start;
    kputs(" starts '");
    kput_bytes((const void *)t->mod_start, size < CONTENT_SHOWN ? size : CONTENT_SHOWN);
    kputs("'\n");
    if (t->mod_end < t->mod_start)
        fail("module ends before it starts:", t->mod_end);
    if (t->mod_start & 0xFFF)     /* the header's module alignment tag */
        fail("module not page-aligned:", t->mod_start);
}

void kernel_main(uint32_t magic, const struct boot_info *info)
{
    terminal_initialize();
    terminal_setcolor(vga_entry_color(VGA_LIGHT_CYAN, VGA_BLACK));
    kputs("barebones2: multiboot2 kernel\n");
    terminal_setcolor(vga_entry_color(VGA_LIGHT_GREY, VGA_BLACK));
    if (magic != MULTIBOOT2_BOOTLOADER_MAGIC)
        fail("EAX is not the multiboot2 magic:", magic);
    kputs("magic ");
    kput_hex(magic);
    kputs(" ok\n");
    kputs("info at ");
    kput_hex((uint32_t)info);
    kputs(" total_size ");
    kput_dec(info->total_size);
    kputc('\n');
    if ((uint32_t)info & 7)
        fail("boot information not 8-byte aligned:", (uint32_t)info);

    uint32_t seen = 0;            /* bit n: a tag of type n */
    uint32_t offset = sizeof *info;
    int count = 0;
    const struct tag *t;
    for (;; count++) {
        if (count == MAX_TAGS || offset + sizeof *t > info->total_size)
            fail("no end tag within total_size; tags walked:", (uint32_t)count);
        t = (const void *)((const char *)info + offset);
        if (t->size < sizeof *t)
            fail("tag smaller than its header, size", t->size);
        if (t->type == TAG_END)
            break;
        if (t->type < 32)
            seen |= 1u << t->type;
        switch (t->type) {
        case TAG_CMDLINE:
            kputs("cmdline ");
            kput_string(((const struct tag_string *)t)->string, 200);
            kputc('\n');
            break;
        case TAG_BOOT_LOADER_NAME:
            kputs("boot loader ");
            kput_string(((const struct tag_string *)t)->string, 80);
            kputc('\n');
            break;
        case TAG_MODULE:
            print_module((const void *)t);
            break;
        case TAG_BASIC_MEMINFO:
            kputs("mem_lower ");
            kput_dec(((const struct tag_basic_meminfo *)t)->mem_lower);
            kputs(" KiB, mem_upper ");
            kput_dec(((const struct tag_basic_meminfo *)t)->mem_upper);
            kputs(" KiB\n");
            break;
        case TAG_BOOTDEV: {
            const struct tag_bootdev *b = (const void *)t;
            kputs("boot device ");
            kput_hex(b->biosdev);
            kputs(" partition ");
            kput_hex(b->partition);
            kputs(" sub-partition ");
            kput_hex(b->sub_partition);
            kputc('\n');
            break;
        }
        case TAG_MMAP:
            print_mmap((const void *)t);
            break;
        default:
            kputs("tag ");
            kput_dec(t->type);
            kputs(" size ");
            kput_dec(t->size);
            kputc('\n');
        }
        offset += (t->size + 7) & ~7u;      /* every tag starts 8-byte aligned */
    }
    if (t->size != 8 || offset + 8 != info->total_size)
        fail("the end tag does not close total_size; it ends at", offset + t->size);
    kputs("tags: ");
    kput_dec((uint32_t)count);
    kputs(", end tag closes total_size\n");
    kputs("modules: ");
    kput_dec(modules);
    kputc('\n');
    uint32_t required = 1u << TAG_CMDLINE | 1u << TAG_BOOT_LOADER_NAME | 1u << TAG_BASIC_MEMINFO | 1u << TAG_MMAP;
    if ((seen & required) != required)
        fail("a tag the request requires is missing; the missing types as bits:", required & ~seen);
    terminal_setcolor(vga_entry_color(VGA_LIGHT_CYAN, VGA_BLACK));
    kputs("barebones2: done\n");
    terminal_update_cursor();
}
