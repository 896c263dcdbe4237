/* SPDX-License-Identifier: MIT */
/*
 * crc32-test: a bare-metal RISC-V program (M-mode, no firmware) that drives the crc32-dma engine of
 * board.yaml: it programs a DMA transfer, sleeps in wfi until the engine's interrupt arrives through the
 * PLIC, and checks the result register and the result the engine wrote into RAM against a CRC computed
 * in software. It prints to the ns16550a and exits through sifive-test: status 0 when every check
 * passed, else the number of the failed check.
 *   riscv64-unknown-elf-gcc -march=rv64imac_zicsr -mabi=lp64 -mcmodel=medany -O2 -ffreestanding \
 *       -nostdlib -Wl,-Ttext-segment=0x80000000 -o crc32-test.elf crc32-test.c
 * Build with -DPOLY=0x82F63B78 -DKNOWN=0xE3069283 -DDEVNAME='"crc32c-dma"' for the CRC-32C engine.
 */
#include <stdint.h>

#ifndef POLY
#define POLY 0xEDB88320u /* CRC-32 (IEEE), reflected */
#endif
#ifndef KNOWN
#define KNOWN 0xCBF43926u /* CRC-32 of "123456789" */
#endif
#ifndef DEVNAME
#define DEVNAME "crc32-dma"
#endif

#define UART 0x10000000ul
#define TEST 0x100000ul
#define PLIC 0xc000000ul
#define DEV 0x10010000ul
#define IRQ 12
#define MAX_LENGTH 4096 /* the board's max-length property */

#define REG32(a) (*(volatile uint32_t *)(a))

static void putc_(char c)
{
    while (!(*(volatile uint8_t *)(UART + 5) & 0x20)) /* LSR.THRE */
        ;
    *(volatile uint8_t *)UART = (uint8_t)c;
}

static void puts_(const char *s)
{
    while (*s)
        putc_(*s++);
}

static void puthex(uint32_t v)
{
    puts_("0x");
    for (int i = 28; i >= 0; i -= 4)
        putc_("0123456789abcdef"[(v >> i) & 15]);
}

static void __attribute__((noreturn)) finish(int code)
{
    REG32(TEST) = code ? (uint32_t)code << 16 | 0x3333 : 0x5555;
    for (;;)
        ;
}

static void check(int n, const char *what, uint32_t got, uint32_t want)
{
    if (got == want) return;
    puts_("crc32-test: check ");
    putc_((char)('0' + n / 10));
    putc_((char)('0' + n % 10));
    puts_(" failed: ");
    puts_(what);
    puts_(" is ");
    puthex(got);
    puts_(", expected ");
    puthex(want);
    puts_("\n");
    finish(n);
}

static uint32_t soft_crc(const uint8_t *p, uint32_t n)
{
    uint32_t crc = 0xffffffffu;
    while (n--) {
        crc ^= *p++;
        for (int k = 0; k < 8; k++)
            crc = (crc >> 1) ^ (POLY & (0u - (crc & 1)));
    }
    return ~crc;
}

static volatile uint32_t irq_status; /* STATUS as the interrupt handler found it */
static volatile uint32_t irq_count;

/* Machine external interrupt: claim from the PLIC, acknowledge the device, complete. */
static void __attribute__((interrupt("machine"))) trap(void)
{
    uint64_t cause;
    __asm__ volatile("csrr %0, mcause" : "=r"(cause));
    if (cause != (1ul << 63 | 11)) {
        puts_("crc32-test: unexpected trap, mcause ");
        puthex((uint32_t)cause);
        puts_("\n");
        finish(99);
    }
    uint32_t src = REG32(PLIC + 0x200004); /* claim, context 0 (hart 0 M-mode) */
    if (src == IRQ) {
        irq_status = REG32(DEV + 0x08);
        REG32(DEV + 0x08) = irq_status; /* write 1 to clear: the line drops */
        irq_count = irq_count + 1;
    }
    REG32(PLIC + 0x200004) = src; /* complete */
}

/* One transfer: program the engine, sleep until its interrupt, return STATUS. */
static uint32_t run(const void *src, uint32_t len, uint32_t *dst)
{
    uint32_t before = irq_count;
    REG32(DEV + 0x0c) = len;
    REG32(DEV + 0x10) = (uint32_t)(uintptr_t)src;
    REG32(DEV + 0x14) = (uint32_t)((uintptr_t)src >> 32);
    REG32(DEV + 0x18) = (uint32_t)(uintptr_t)dst;
    REG32(DEV + 0x1c) = (uint32_t)((uintptr_t)dst >> 32);
    /* Sleep with interrupts masked, so the interrupt cannot slip in between the test and the wfi (wfi
     * still wakes on a pending one); unmasked, it is taken at once. */
    __asm__ volatile("csrc mstatus, %0" ::"r"(1ul << 3));
    REG32(DEV + 0x04) = 3; /* IRQ_EN | START */
    while (irq_count == before) {
        __asm__ volatile("wfi");
        __asm__ volatile("csrs mstatus, %0" ::"r"(1ul << 3));
        __asm__ volatile("csrc mstatus, %0" ::"r"(1ul << 3));
    }
    __asm__ volatile("csrs mstatus, %0" ::"r"(1ul << 3));
    return irq_status;
}

static uint8_t data[MAX_LENGTH + 1];
static uint32_t out;

int main(void)
{
    puts_("crc32-test: " DEVNAME "\n");
    check(1, "ID", REG32(DEV + 0x00), 0x43524333);

    /* The PLIC: source IRQ at priority 1, enabled for context 0, threshold 0. */
    REG32(PLIC + 4 * IRQ) = 1;
    REG32(PLIC + 0x2000 + 4 * (IRQ / 32)) = 1u << (IRQ % 32);
    REG32(PLIC + 0x200000) = 0;
    /* The hart: trap vector, machine external interrupts on (mie.MEIE), interrupts on (mstatus.MIE). */
    __asm__ volatile("csrw mtvec, %0" ::"r"(&trap));
    __asm__ volatile("csrs mie, %0" ::"r"(1ul << 11));
    __asm__ volatile("csrs mstatus, %0" ::"r"(1ul << 3));

    static const char digits[] = "123456789";
    check(2, "STATUS", run(digits, 9, &out), 1);
    check(3, "RESULT", REG32(DEV + 0x20), KNOWN);
    check(4, "result written by DMA", out, KNOWN);

    uint32_t x = 12345;
    for (int i = 0; i < MAX_LENGTH; i++) {
        x = x * 1103515245u + 12345u;
        data[i] = (uint8_t)(x >> 16);
    }
    out = 0;
    uint32_t want = soft_crc(data, MAX_LENGTH);
    check(5, "STATUS", run(data, MAX_LENGTH, &out), 1);
    check(6, "RESULT", REG32(DEV + 0x20), want);
    check(7, "result written by DMA", out, want);
    check(8, "interrupts taken", irq_count, 2);

    /* Over max-length: refused with ERROR, RESULT and RAM untouched, and still an interrupt. */
    out = 0;
    check(9, "STATUS", run(data, MAX_LENGTH + 1, &out), 3);
    check(10, "RESULT", REG32(DEV + 0x20), want);
    check(11, "RAM", out, 0);
    check(12, "pending after acknowledge", REG32(PLIC + 0x1000) & (1u << IRQ), 0);

    puts_("crc32-test: ok\n");
    finish(0);
}

/* Entry: a stack, then main. */
__asm__(".pushsection .text.start, \"ax\"\n"
        ".globl _start\n"
        "_start:\n"
        "  la sp, stack_top\n"
        "  call main\n"
        "1: j 1b\n"
        ".popsection\n"
        ".pushsection .bss\n"
        ".balign 16\n"
        "  .skip 8192\n"
        "stack_top:\n"
        ".popsection\n");
