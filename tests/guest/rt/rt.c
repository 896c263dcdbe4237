// SPDX-License-Identifier: MIT
// Guest test runtime: HTIF (spike) or ns16550a + sifive-test (riscv-virt) I/O, printf, checks, M trap
// handler.
#include "rt.h"

#include <stdarg.h>

volatile struct rt_trap_record rt_mtrap, rt_strap;
int (*rt_trap_hook)(struct rt_frame *f);
uint64_t rt_jmpbuf[14];
static int expecting;
static int check_no;

void rt_run_resume(void);
void rt_lower_exit(void);

#ifdef RT_VIRT
// riscv-virt: ns16550a at 0x10000000, sifive-test at 0x100000.
#define UART ((volatile uint8_t *)0x10000000)
#define UART_THR 0
#define UART_LSR 5
#define LSR_THRE 0x20
#define SIFIVE_TEST ((volatile uint32_t *)0x100000)

void rt_putchar(int c)
{
    while (!(UART[UART_LSR] & LSR_THRE)) {
    }
    UART[UART_THR] = (uint8_t)c;
}

void rt_exit(int code)
{
    *SIFIVE_TEST = code == 0 ? 0x5555 : 0x3333u | ((uint32_t)code << 16);
    for (;;) {
    }
}
#else
// spike: HTIF words, found by the loader through these symbols.
volatile uint64_t tohost __attribute__((section(".tohost"), aligned(64)));
volatile uint64_t fromhost __attribute__((section(".tohost"), aligned(64)));

void rt_putchar(int c)
{
    // Device 1 (console), command 1 (putchar). The host answers in fromhost; the wait is bounded
    // because output is best effort, while a lost character must never hang a test.
    while (tohost) {
    }
    tohost = (1ull << 56) | (1ull << 48) | (uint8_t)c;
    for (int i = 0; i < 100000 && fromhost == 0; i++) {
    }
    fromhost = 0;
}

void rt_exit(int code)
{
    for (;;)
        tohost = ((uint64_t)(uint32_t)code << 1) | 1;
}
#endif

void rt_puts(const char *s)
{
    while (*s)
        rt_putchar(*s++);
}

static void put_num(uint64_t v, unsigned base, int neg, int width, char pad)
{
    char buf[24];
    int n = 0;
    do {
        buf[n++] = "0123456789abcdef"[v % base];
        v /= base;
    } while (v);
    if (neg) buf[n++] = '-';
    while (n < width--)
        rt_putchar(pad);
    while (n)
        rt_putchar(buf[--n]);
}

// %[0][width][l|ll]{d,u,x,c,s,p}: enough for failure messages.
void rt_printf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    for (; *fmt; fmt++) {
        if (*fmt != '%') {
            rt_putchar(*fmt);
            continue;
        }
        fmt++;
        char pad = ' ';
        int width = 0, lng = 0;
        if (*fmt == '0') pad = '0';
        while (*fmt >= '0' && *fmt <= '9')
            width = width * 10 + (*fmt++ - '0');
        while (*fmt == 'l') {
            lng = 1;
            fmt++;
        }
        switch (*fmt) {
        case 'd': {
            int64_t v = lng ? va_arg(ap, int64_t) : va_arg(ap, int);
            put_num(v < 0 ? -(uint64_t)v : (uint64_t)v, 10, v < 0, width, pad);
            break;
        }
        case 'u':
            put_num(lng ? va_arg(ap, uint64_t) : va_arg(ap, unsigned), 10, 0, width, pad);
            break;
        case 'x':
            put_num(lng ? va_arg(ap, uint64_t) : va_arg(ap, unsigned), 16, 0, width, pad);
            break;
        case 'p':
            rt_puts("0x");
            put_num((uint64_t)va_arg(ap, void *), 16, 0, 0, pad);
            break;
        case 'c':
            rt_putchar(va_arg(ap, int));
            break;
        case 's':
            rt_puts(va_arg(ap, const char *));
            break;
        case '%':
            rt_putchar('%');
            break;
        default:
            rt_putchar('?');
        }
    }
    va_end(ap);
}

void rt_check(int ok, const char *file, int line, const char *expr, uint64_t got, uint64_t want, int values)
{
    check_no++;
    if (ok) return;
    rt_printf("FAIL check %d (%s:%d): %s", check_no, file, line, expr);
    if (values) rt_printf(": got 0x%lx, expected 0x%lx", got, want);
    rt_printf("\n");
    rt_exit(check_no < 254 ? check_no : 254);
}

// Assembly tests land here (asm.h): a0 = check id, a1 = value, a2 = expected.
void rt_fail(uint64_t id, uint64_t got, uint64_t want)
{
    rt_printf("FAIL check %lu: got 0x%lx, expected 0x%lx\n", id, got, want);
    rt_exit(id ? (int)id : 254);
}

void rt_expect_trap(void)
{
    rt_mtrap.count = 0;
    rt_mtrap.cause = rt_mtrap.epc = rt_mtrap.tval = ~0ull;
    expecting = 1;
}

void rt_expect_done(void)
{
    expecting = 0;
}

static unsigned insn_len(uint64_t pc)
{
    return (*(volatile uint16_t *)pc & 3) == 3 ? 4 : 2;
}

void rt_trap(struct rt_frame *f)
{
    uint64_t mode = (f->mstatus >> 11) & 3;
    // The end of an rt_run: ecall from U, S or M with the magic a7.
    if ((f->mcause == 8 || f->mcause == 9 || f->mcause == 11) && f->x[17] == RT_ECALL_RETURN) {
        f->mepc = (uint64_t)rt_run_resume;
        f->mstatus |= MSTATUS_MPP;
        return;
    }
    if (rt_trap_hook && rt_trap_hook(f)) return;
    if (expecting && !(f->mcause & CAUSE_INTERRUPT)) {
        rt_mtrap.cause = f->mcause;
        rt_mtrap.epc = f->mepc;
        rt_mtrap.tval = f->mtval;
        rt_mtrap.mode = mode;
        rt_mtrap.count++;
        // Instruction fetch faults (misaligned, access, page) cannot be stepped over: the test called the
        // bad address, so go back to the caller.
        if (f->mcause == 0 || f->mcause == 1 || f->mcause == 12)
            f->mepc = f->x[1];
        else
            f->mepc += insn_len(f->mepc);
        return;
    }
    rt_printf("FAIL unexpected trap: mcause 0x%lx mepc 0x%lx mtval 0x%lx from mode %lu\n", f->mcause, f->mepc,
              f->mtval, mode);
    rt_exit(255);
}

void rt_pmp_allow_all(void)
{
    CSR_WRITE(pmpaddr0, ~0ull);
    CSR_WRITE(pmpcfg0, 0x1f); // NAPOT, R W X
}

// The compiler may emit calls to these for struct copies and zeroing.
void *memset(void *d, int c, unsigned long n)
{
    uint8_t *p = d;
    while (n--)
        *p++ = (uint8_t)c;
    return d;
}

void *memcpy(void *d, const void *s, unsigned long n)
{
    uint8_t *p = d;
    const uint8_t *q = s;
    while (n--)
        *p++ = *q++;
    return d;
}
