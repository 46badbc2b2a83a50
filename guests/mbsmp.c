/* A multiboot SMP kernel, as a small OS brings up its processors on a PC without ACPI:
 *  - QEMU's fw_cfg (ports 0x510/0x511): its signature, the CPU count, max CPUs, the RAM size, its
 *    interface ID and the command line (size, then the bytes, the NUL included);
 *  - the MP table (Intel MultiProcessor Specification 1.4, 4): the floating pointer searched in the
 *    EBDA's first KiB (segment at 0x40E), then the last KiB of base memory (KiB at 0x413), then
 *    0xF0000-0xFFFFF; its checksums, and each processor, bus and IOAPIC entry it lists;
 *  - each enabled processor other than this one started with INIT, SIPI (and a second SIPI only if
 *    the first did not start it, as Linux and SeaBIOS do) through the local APIC's ICR, after
 *    software-enabling the local APIC (SPIV bit 8); the delays come from the PIT's channel 2.
 * The APs run mbsmp_trampoline.asm; the BSP waits (bounded) for each and prints "N APs started".
 * No interrupts anywhere. A failed check prints "FAIL: ..." and exits with FAIL_STATUS. */
#include "pcterm.h"

#define MULTIBOOT_BOOTLOADER_MAGIC 0x2BADB002

#define FW_CFG_SELECTOR 0x510
#define FW_CFG_DATA 0x511
#define FW_CFG_SIGNATURE 0x0000
#define FW_CFG_ID 0x0001
#define FW_CFG_RAM_SIZE 0x0003
#define FW_CFG_NB_CPUS 0x0005
#define FW_CFG_MAX_CPUS 0x000F
#define FW_CFG_CMDLINE_SIZE 0x0014
#define FW_CFG_CMDLINE_DATA 0x0015
#define CMDLINE_SHOWN 64

#define BDA_EBDA_SEGMENT 0x40E
#define BDA_BASE_MEMORY_KIB 0x413

#define LAPIC_BASE 0xFEE00000
#define LAPIC_ID 0x20
#define LAPIC_VERSION 0x30
#define LAPIC_SPIV 0xF0
#define LAPIC_ICR_LOW 0x300
#define LAPIC_ICR_HIGH 0x310
#define SPIV_ENABLE 0x100
#define ICR_INIT 0x4500           /* INIT, level assert */
#define ICR_STARTUP 0x4600        /* Start-up, the vector in bits 0-7 */
#define ICR_BUSY (1 << 12)        /* delivery status: send pending */

#define AP_TRAMPOLINE 0x8000      /* must match mbsmp_trampoline.asm */

#define PIT_CHANNEL2 0x42
#define PIT_COMMAND 0x43
#define PIT_PORT_B 0x61           /* bit 0: channel 2 gate, bit 1: speaker, bit 5: channel 2 output */
#define PIT_HZ 1193182

extern volatile uint32_t ap_count, ap_seen[2];
extern const char ap_trampoline[], ap_trampoline_end[];

/* --- fw_cfg ---------------------------------------------------------------------------------- */

static void fw_cfg_read(uint16_t key, void *buf, size_t size)
{
    outw(FW_CFG_SELECTOR, key);
    for (size_t i = 0; i < size; i++)
        ((uint8_t *)buf)[i] = inb(FW_CFG_DATA);
}

static uint32_t report_fw_cfg(void)
{
    char signature[4];
    uint16_t cpus = 0, max_cpus = 0;
    uint32_t id = 0, cmdline_size = 0;
    char cmdline[CMDLINE_SHOWN];
    uint64_t ram = 0;
    fw_cfg_read(FW_CFG_SIGNATURE, signature, sizeof signature);
    kputs("fw_cfg signature '");
    kput_bytes(signature, sizeof signature);
    kputs("'\n");
    if (memcmp(signature, "QEMU", 4))
        fail("no fw_cfg at 0x510", 0);
    fw_cfg_read(FW_CFG_NB_CPUS, &cpus, sizeof cpus);      /* little-endian, as this CPU */
    fw_cfg_read(FW_CFG_MAX_CPUS, &max_cpus, sizeof max_cpus);
    fw_cfg_read(FW_CFG_RAM_SIZE, &ram, sizeof ram);
    kputs("fw_cfg: ");
    kput_dec(cpus);
    kputs(" CPUs, max ");
    kput_dec(max_cpus);
    kputs(", RAM ");
    kput_dec((uint32_t)(ram >> 20));
    kputs(" MiB\n");
    fw_cfg_read(FW_CFG_ID, &id, sizeof id);
    fw_cfg_read(FW_CFG_CMDLINE_SIZE, &cmdline_size, sizeof cmdline_size);
    uint32_t shown = cmdline_size < CMDLINE_SHOWN ? cmdline_size : CMDLINE_SHOWN;
    fw_cfg_read(FW_CFG_CMDLINE_DATA, cmdline, shown);
    kputs("fw_cfg: ID ");
    kput_hex(id);
    kputs(", command line of ");
    kput_dec(cmdline_size);
    kputs(" bytes '");
    kput_bytes(cmdline, shown);
    kputs("'\n");
    return cpus;
}

/* --- the MP table ---------------------------------------------------------------------------- */

struct mp_floating_pointer {
    char signature[4];            /* "_MP_" */
    uint32_t config_table;
    uint8_t length;               /* in 16-byte paragraphs: 1 */
    uint8_t spec_rev;             /* 4: version 1.4 */
    uint8_t checksum;
    uint8_t features[5];          /* features[0] != 0: a default configuration, no table */
} __attribute__((packed));

struct mp_config_table {
    char signature[4];            /* "PCMP" */
    uint16_t base_table_length;
    uint8_t spec_rev;
    uint8_t checksum;
    char oem_id[8];
    char product_id[12];
    uint32_t oem_table;
    uint16_t oem_table_size;
    uint16_t entry_count;
    uint32_t lapic_address;
    uint16_t extended_table_length;
    uint8_t extended_table_checksum;
    uint8_t reserved;
} __attribute__((packed));

struct mp_processor {
    uint8_t type;                 /* 0 */
    uint8_t lapic_id;
    uint8_t lapic_version;
    uint8_t cpu_flags;            /* bit 0: enabled, bit 1: the bootstrap processor */
    uint32_t signature;
    uint32_t features;
    uint32_t reserved[2];
} __attribute__((packed));

struct mp_bus {
    uint8_t type;                 /* 1 */
    uint8_t bus_id;
    char bus_type[6];
} __attribute__((packed));

struct mp_ioapic {
    uint8_t type;                 /* 2 */
    uint8_t id;
    uint8_t version;
    uint8_t flags;                /* bit 0: usable */
    uint32_t address;
} __attribute__((packed));

#define MAX_CPUS 64               /* the trampoline keeps a bit per APIC ID in two dwords */

static uint8_t cpu_ids[MAX_CPUS];
static int cpu_count;

static uint8_t checksum(const void *data, size_t size)
{
    uint8_t sum = 0;
    for (size_t i = 0; i < size; i++)
        sum = (uint8_t)(sum + ((const uint8_t *)data)[i]);
    return sum;
}

/* The floating pointer in [start, start + size): 16-byte aligned, "_MP_", a valid checksum. */
static const struct mp_floating_pointer *search(uint32_t start, uint32_t size)
{
    for (uint32_t addr = start; addr + 16 <= start + size; addr += 16) {
        const struct mp_floating_pointer *mpf = (const void *)addr;
        if (!memcmp(mpf->signature, "_MP_", 4) && mpf->length == 1 && checksum(mpf, 16) == 0)
            return mpf;
    }
    return 0;
}

/* A word of low memory (the BIOS data area): through a register, so the compiler does not take
 * an access near address 0 for a null-pointer bug. */
static uint16_t read_low_word(uint32_t addr)
{
    __asm__("" : "+r"(addr));
    return *(volatile uint16_t *)addr;
}

static const struct mp_floating_pointer *find_floating_pointer(void)
{
    uint32_t ebda = (uint32_t)read_low_word(BDA_EBDA_SEGMENT) << 4;
    uint32_t base_kib = read_low_word(BDA_BASE_MEMORY_KIB);
    const struct mp_floating_pointer *mpf;
    kputs("BDA: EBDA at ");
    kput_hex(ebda);
    kputs(", base memory ");
    kput_dec(base_kib);
    kputs(" KiB\n");
    if (ebda && (mpf = search(ebda, 1024))) {
        kputs("MP floating pointer in the EBDA at ");
    } else if (base_kib && (mpf = search((base_kib - 1) * 1024, 1024))) {
        kputs("MP floating pointer in the last KiB of base memory at ");
    } else if ((mpf = search(0xF0000, 0x10000))) {
        kputs("MP floating pointer in the BIOS ROM at ");
    } else {
        fail("no MP floating pointer found", 0);
    }
    kput_hex((uint32_t)mpf);
    kputs(", spec 1.");
    kput_dec(mpf->spec_rev);
    kputc('\n');
    return mpf;
}

static void read_mp_table(void)
{
    const struct mp_floating_pointer *mpf = find_floating_pointer();
    if (mpf->features[0] || !mpf->config_table)
        fail("the MP table is a default configuration, number", mpf->features[0]);
    const struct mp_config_table *table = (const void *)mpf->config_table;
    if (memcmp(table->signature, "PCMP", 4))
        fail("no PCMP at the floating pointer's address", mpf->config_table);
    if (checksum(table, table->base_table_length) != 0)
        fail("the MP configuration table's checksum is wrong, length", table->base_table_length);
    kputs("MP table at ");
    kput_hex(mpf->config_table);
    kputs(": OEM '");
    kput_bytes(table->oem_id, sizeof table->oem_id);
    kputs("' product '");
    kput_bytes(table->product_id, sizeof table->product_id);
    kputs("', ");
    kput_dec(table->entry_count);
    kputs(" entries, local APIC at ");
    kput_hex(table->lapic_address);
    kputc('\n');

    const uint8_t *entry = (const uint8_t *)(table + 1);
    const uint8_t *end = (const uint8_t *)table + table->base_table_length;
    for (int i = 0; i < table->entry_count && entry < end; i++) {
        switch (*entry) {
        case 0: {
            const struct mp_processor *p = (const void *)entry;
            kputs("cpu: APIC ID ");
            kput_dec(p->lapic_id);
            kputs(p->cpu_flags & 1 ? " enabled" : " disabled");
            kputs(p->cpu_flags & 2 ? ", bootstrap processor\n" : "\n");
            if ((p->cpu_flags & 1) && cpu_count < MAX_CPUS && p->lapic_id < MAX_CPUS)
                cpu_ids[cpu_count++] = p->lapic_id;
            entry += sizeof *p;
            break;
        }
        case 1: {
            const struct mp_bus *b = (const void *)entry;
            kputs("bus ");
            kput_dec(b->bus_id);
            kputs(" '");
            kput_bytes(b->bus_type, sizeof b->bus_type);
            kputs("'\n");
            entry += 8;
            break;
        }
        case 2: {
            const struct mp_ioapic *io = (const void *)entry;
            kputs("ioapic: ID ");
            kput_dec(io->id);
            kputs(" at ");
            kput_hex(io->address);
            kputc('\n');
            entry += 8;
            break;
        }
        case 3:
        case 4:
            entry += 8;           /* interrupt assignments: counted, not listed */
            break;
        default:
            fail("unknown MP table entry type", *entry);
        }
    }
    kputs("MP table: ");
    kput_dec((uint32_t)cpu_count);
    kputs(" enabled processors\n");
}

/* --- delays from the PIT, the local APIC, starting the APs ------------------------------------ */

/* Waits `us` microseconds (up to 54 ms) on PIT channel 2, one-shot (mode 0), as Linux calibrates
 * its TSC: gate on, count down, poll the output in port 0x61. Bounded in reads. */
static void pit_delay_us(uint32_t us)
{
    uint32_t ticks = us * (PIT_HZ / 1000) / 1000;
    uint8_t port_b = inb(PIT_PORT_B) & ~0x03;       /* gate and speaker off */
    outb(PIT_PORT_B, port_b);
    outb(PIT_COMMAND, 0xB0);                        /* channel 2, lobyte/hibyte, mode 0, binary */
    outb(PIT_CHANNEL2, (uint8_t)ticks);
    outb(PIT_CHANNEL2, (uint8_t)(ticks >> 8));
    outb(PIT_PORT_B, port_b | 0x01);                /* gate on: counting starts */
    for (int reads = 0; reads < 200000; reads++)
        if (inb(PIT_PORT_B) & 0x20)
            return;
    fail("PIT channel 2 never reached its terminal count; ticks", ticks);
}

static inline uint32_t lapic_read(uint32_t reg)
{
    return *(volatile uint32_t *)(LAPIC_BASE + reg);
}

static inline void lapic_write(uint32_t reg, uint32_t value)
{
    *(volatile uint32_t *)(LAPIC_BASE + reg) = value;
}

static void send_ipi(uint8_t apic_id, uint32_t icr)
{
    lapic_write(LAPIC_ICR_HIGH, (uint32_t)apic_id << 24);
    lapic_write(LAPIC_ICR_LOW, icr);
    for (int spins = 0; lapic_read(LAPIC_ICR_LOW) & ICR_BUSY; spins++)
        if (spins == 100000)
            fail("the ICR stays busy sending", icr);
}

/* Waits up to `ms` milliseconds for ap_count to reach `count`. */
static int wait_for_aps(uint32_t count, int ms)
{
    for (int i = 0; i < ms * 10; i++) {
        if (ap_count >= count)
            return 1;
        pit_delay_us(100);
    }
    return ap_count >= count;
}

static void start_ap(uint8_t apic_id, uint32_t started_before)
{
    send_ipi(apic_id, ICR_INIT);
    pit_delay_us(10000);                            /* 10 ms after INIT (MP spec B.4) */
    send_ipi(apic_id, ICR_STARTUP | AP_TRAMPOLINE >> 12);
    /* The spec waits 200 us before the second SIPI; longer here, where ring 0 may be emulated:
     * a SIPI that reaches a running AP should be ignored, but is better not sent at all. */
    if (!wait_for_aps(started_before + 1, 20)) {
        send_ipi(apic_id, ICR_STARTUP | AP_TRAMPOLINE >> 12);
        kputs("second SIPI for APIC ID ");
        kput_dec(apic_id);
        kputc('\n');
    }
    if (!wait_for_aps(started_before + 1, 1000))
        fail("this AP did not start within a second, APIC ID", apic_id);
    kputs("AP with APIC ID ");
    kput_dec(apic_id);
    kputs(ap_seen[apic_id / 32] & (1u << apic_id % 32) ? " started\n" : " started, but another APIC ID counted\n");
}

void kernel_main(uint32_t magic, const void *info)
{
    (void)info;
    terminal_initialize();
    terminal_setcolor(vga_entry_color(VGA_LIGHT_MAGENTA, VGA_BLACK));
    kputs("mbsmp: multiboot SMP kernel\n");
    terminal_setcolor(vga_entry_color(VGA_LIGHT_GREY, VGA_BLACK));
    if (magic != MULTIBOOT_BOOTLOADER_MAGIC)
        fail("EAX is not the multiboot magic:", magic);
    uint32_t fw_cfg_cpus = report_fw_cfg();
    read_mp_table();
    if ((uint32_t)cpu_count != fw_cfg_cpus)
        fail("the MP table and fw_cfg disagree on the CPU count; the MP table says", (uint32_t)cpu_count);

    uint8_t bsp = (uint8_t)(lapic_read(LAPIC_ID) >> 24);
    lapic_write(LAPIC_SPIV, lapic_read(LAPIC_SPIV) | SPIV_ENABLE | 0xFF);
    kputs("BSP: APIC ID ");
    kput_dec(bsp);
    kputs(", local APIC version ");
    kput_hex(lapic_read(LAPIC_VERSION) & 0xFF);
    kputs(", software-enabled\n");

    memcpy((void *)AP_TRAMPOLINE, ap_trampoline, (size_t)(ap_trampoline_end - ap_trampoline));
    uint32_t started = 0;
    for (int i = 0; i < cpu_count; i++) {
        if (cpu_ids[i] == bsp)
            continue;
        start_ap(cpu_ids[i], started);
        started++;
    }
    if (ap_count != (uint32_t)cpu_count - 1)
        fail("APs counted other than the MP table's processors but this one:", ap_count);
    terminal_setcolor(vga_entry_color(VGA_LIGHT_MAGENTA, VGA_BLACK));
    kput_dec(ap_count);
    kputs(" APs started\n");
    terminal_update_cursor();
}
