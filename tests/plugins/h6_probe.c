// SPDX-License-Identifier: MIT
// H6 probe plugin (API v7): what the plugin API reports about a guest, for the guests h6_count, h6_mem and
// h6_regs (checked by h6_check.py against the guest's own view).
//
// Arguments:
//   mode=count|mem|regs   what to probe (required)
//   begin=MARK, end=MARK  count and mem: the region's first instruction and the instruction after it
//   regs=MARK, write=MARK, memw=MARK
//                         regs: the three marker instructions (default: the guest symbols h6_regs_mark,
//                         h6_write_mark, h6_memw_mark)
// A MARK is a guest symbol (found with qemu_plugin_insn_symbol) or a pc (0x...).
//
// mode=count: every instruction gets an inline per-vCPU add and a callback. The callback of the begin
//   marker snapshots the inline count and starts the callback count; the end marker's callback stops it
//   and prints "h6 region N: callback=C inline=I": the instructions executed from the begin marker
//   (inclusive) to the end marker (exclusive), counted both ways. At exit: "h6 total: callback=C
//   inline=I" for the whole run. With symbols=on, also "h6 sym NAME 0x.." for each instruction that
//   qemu_plugin_insn_symbol names (once per pc).
// mode=mem: between the markers, each memory access as "h6 mem load|store vaddr=0x.. paddr=0x.. size=N
//   sign=0|1 value=0x.. io=0|1 dev=NAME" (value: mem_get_value, masked to the size).
// mode=regs: at the regs marker (QEMU_PLUGIN_CB_R_REGS) every register of
//   qemu_plugin_get_registers as "h6 reg NAME 0x.."; at the write marker (RW_REGS) writes a1 and fa1 and
//   prints "h6 wrote a1 fa1"; at the memw marker (R_REGS) writes 8 bytes at the address in a4 with
//   qemu_plugin_write_memory_vaddr and prints "h6 wrote memory 0x..".
#include <qemu-plugin.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

QEMU_PLUGIN_EXPORT int qemu_plugin_version = QEMU_PLUGIN_VERSION;

enum mode { MODE_NONE, MODE_COUNT, MODE_MEM, MODE_REGS };
enum kind { PLAIN, BEGIN, END };

// The values h6_regs.S expects the plugin to write (a1, fa1) and the bytes it writes to memory.
#define H6_WRITE_A1 0x1122334455667788ull
#define H6_WRITE_FA1 0x3ff8000000000000ull // 1.5
static const uint8_t h6_plugin_bytes[8] = {'h', '6', 'p', 'l', 'u', 'g', 'i', 'n'};

struct vcpu_counts {
    uint64_t inl;          // inline count, whole run
    uint64_t cb_total;     // callback count, whole run
    uint64_t cb_region;    // callback count since the begin marker
    uint64_t inl_at_begin; // inline count when the begin marker ran
    uint64_t on;           // inside the region
    uint64_t regions;      // regions completed
};

static enum mode mode;
static bool report_symbols;  // count: symbols=on
static GHashTable *reported; // pcs whose symbol was reported
static char *begin_mark, *end_mark, *regs_mark, *write_mark, *memw_mark;
static struct qemu_plugin_scoreboard *board;
static qemu_plugin_u64 inl;

static void out(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void out(const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    qemu_plugin_outs(line);
}

// Whether the instruction is the marker MARK (a symbol name, or a pc written 0x...).
static bool is_mark(struct qemu_plugin_insn *insn, const char *mark)
{
    if (!mark) return false;
    if (mark[0] == '0' && mark[1] == 'x') return qemu_plugin_insn_vaddr(insn) == strtoull(mark, NULL, 16);
    const char *sym = qemu_plugin_insn_symbol(insn);
    return sym && strcmp(sym, mark) == 0;
}

static enum kind kind_of(struct qemu_plugin_insn *insn)
{
    return is_mark(insn, begin_mark) ? BEGIN : is_mark(insn, end_mark) ? END : PLAIN;
}

// --- mode=count ---

static void count_cb(unsigned vcpu, void *ud)
{
    struct vcpu_counts *c = qemu_plugin_scoreboard_find(board, vcpu);
    enum kind k = (enum kind)(uintptr_t)ud;
    if (k == BEGIN) {
        c->on = 1;
        c->cb_region = 0;
        c->inl_at_begin = c->inl;
    } else if (k == END && c->on) {
        c->on = 0;
        out("h6 region %" PRIu64 ": callback=%" PRIu64 " inline=%" PRIu64 "\n", c->regions++, c->cb_region,
            c->inl - c->inl_at_begin);
    }
    c->cb_total++;
    if (c->on) c->cb_region++;
}

// --- mode=mem ---

static void mem_cb(unsigned vcpu, qemu_plugin_meminfo_t info, uint64_t vaddr, void *ud)
{
    (void)ud;
    struct vcpu_counts *c = qemu_plugin_scoreboard_find(board, vcpu);
    if (!c->on) return;
    unsigned shift = qemu_plugin_mem_size_shift(info);
    qemu_plugin_mem_value v = qemu_plugin_mem_get_value(info);
    uint64_t value = 0;
    switch (v.type) {
    case QEMU_PLUGIN_MEM_VALUE_U8:
        value = v.data.u8;
        break;
    case QEMU_PLUGIN_MEM_VALUE_U16:
        value = v.data.u16;
        break;
    case QEMU_PLUGIN_MEM_VALUE_U32:
        value = v.data.u32;
        break;
    case QEMU_PLUGIN_MEM_VALUE_U64:
        value = v.data.u64;
        break;
    case QEMU_PLUGIN_MEM_VALUE_U128:
        value = v.data.u128.low;
        break;
    }
    if ((unsigned)v.type != shift) out("h6 mem value type %d for size shift %u\n", (int)v.type, shift);
    struct qemu_plugin_hwaddr *hw = qemu_plugin_get_hwaddr(info, vaddr);
    const char *dev = hw ? qemu_plugin_hwaddr_device_name(hw) : NULL;
    out("h6 mem %s vaddr=0x%" PRIx64 " paddr=0x%" PRIx64 " size=%u sign=%d value=0x%" PRIx64
        " io=%d dev=%s\n",
        qemu_plugin_mem_is_store(info) ? "store" : "load", vaddr, hw ? qemu_plugin_hwaddr_phys_addr(hw) : 0,
        1u << shift, (int)qemu_plugin_mem_is_sign_extended(info), value,
        hw ? (int)qemu_plugin_hwaddr_is_io(hw) : -1, dev ? dev : "(null)");
    if (qemu_plugin_mem_is_big_endian(info)) out("h6 mem big-endian access at 0x%" PRIx64 "\n", vaddr);
}

static void mem_mark_cb(unsigned vcpu, void *ud)
{
    struct vcpu_counts *c = qemu_plugin_scoreboard_find(board, vcpu);
    c->on = (enum kind)(uintptr_t)ud == BEGIN;
    out("h6 mem %s\n", c->on ? "begin" : "end");
}

// --- mode=regs ---

static struct qemu_plugin_register *find_reg(GArray *regs, const char *name)
{
    for (guint i = 0; i < regs->len; i++) {
        qemu_plugin_reg_descriptor *d = &g_array_index(regs, qemu_plugin_reg_descriptor, i);
        if (strcmp(d->name, name) == 0) return d->handle;
    }
    return NULL;
}

static uint64_t read_u64(struct qemu_plugin_register *h, bool *ok)
{
    GByteArray *buf = g_byte_array_new();
    uint64_t v = 0;
    *ok = h && qemu_plugin_read_register(h, buf) && buf->len <= 8;
    if (*ok) memcpy(&v, buf->data, buf->len); // guest (little-endian) byte order, as the host's
    g_byte_array_free(buf, TRUE);
    return v;
}

static void dump_regs(unsigned vcpu, void *ud)
{
    (void)vcpu, (void)ud;
    GArray *regs = qemu_plugin_get_registers();
    out("h6 registers: %u\n", regs->len);
    for (guint i = 0; i < regs->len; i++) {
        qemu_plugin_reg_descriptor *d = &g_array_index(regs, qemu_plugin_reg_descriptor, i);
        bool ok;
        uint64_t v = read_u64(d->handle, &ok);
        if (ok) {
            out("h6 reg %s 0x%" PRIx64 "\n", d->name, v);
        } else {
            out("h6 reg %s unreadable\n", d->name);
        }
    }
    g_array_free(regs, TRUE);
}

static bool write_u64(GArray *regs, const char *name, uint64_t v)
{
    struct qemu_plugin_register *h = find_reg(regs, name);
    GByteArray *buf = g_byte_array_new();
    g_byte_array_append(buf, (const guint8 *)&v, sizeof(v));
    bool ok = h && qemu_plugin_write_register(h, buf);
    g_byte_array_free(buf, TRUE);
    return ok;
}

static void write_regs(unsigned vcpu, void *ud)
{
    (void)vcpu, (void)ud;
    GArray *regs = qemu_plugin_get_registers();
    bool a1 = write_u64(regs, "a1", H6_WRITE_A1);
    bool fa1 = write_u64(regs, "fa1", H6_WRITE_FA1);
    out("h6 wrote%s%s\n", a1 ? " a1" : "", fa1 ? " fa1" : "");
    g_array_free(regs, TRUE);
}

static void write_mem(unsigned vcpu, void *ud)
{
    (void)vcpu, (void)ud;
    GArray *regs = qemu_plugin_get_registers();
    bool ok;
    uint64_t addr = read_u64(find_reg(regs, "a4"), &ok);
    g_array_free(regs, TRUE);
    GByteArray *data = g_byte_array_new();
    g_byte_array_append(data, h6_plugin_bytes, sizeof(h6_plugin_bytes));
    if (ok && qemu_plugin_write_memory_vaddr(addr, data)) {
        out("h6 wrote memory 0x%" PRIx64 "\n", addr);
    } else {
        out("h6 could not write memory\n");
    }
    g_byte_array_free(data, TRUE);
}

static void tb_trans(struct qemu_plugin_tb *tb, void *ud)
{
    (void)ud;
    size_t n = qemu_plugin_tb_n_insns(tb);
    for (size_t i = 0; i < n; i++) {
        struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
        enum kind k = kind_of(insn);
        switch (mode) {
        case MODE_COUNT:
            if (report_symbols) {
                const char *sym = qemu_plugin_insn_symbol(insn);
                uint64_t pc = qemu_plugin_insn_vaddr(insn);
                if (sym && !g_hash_table_contains(reported, (gpointer)(uintptr_t)pc)) {
                    g_hash_table_add(reported, (gpointer)(uintptr_t)pc);
                    out("h6 sym %s 0x%" PRIx64 "\n", sym, pc);
                }
            }
            // The callback before the inline add: if an engine ran them the other way round, both
            // markers' snapshots would move by one and the region's inline count would not change.
            qemu_plugin_register_vcpu_insn_exec_cb(insn, count_cb, QEMU_PLUGIN_CB_NO_REGS,
                                                   (void *)(uintptr_t)k);
            qemu_plugin_register_vcpu_insn_exec_inline_per_vcpu(insn, QEMU_PLUGIN_INLINE_ADD_U64, inl, 1);
            break;
        case MODE_MEM:
            if (k != PLAIN) {
                qemu_plugin_register_vcpu_insn_exec_cb(insn, mem_mark_cb, QEMU_PLUGIN_CB_NO_REGS,
                                                       (void *)(uintptr_t)k);
            }
            qemu_plugin_register_vcpu_mem_cb(insn, mem_cb, QEMU_PLUGIN_CB_NO_REGS, QEMU_PLUGIN_MEM_RW, NULL);
            break;
        case MODE_REGS:
            if (is_mark(insn, regs_mark)) {
                qemu_plugin_register_vcpu_insn_exec_cb(insn, dump_regs, QEMU_PLUGIN_CB_R_REGS, NULL);
            } else if (is_mark(insn, write_mark)) {
                qemu_plugin_register_vcpu_insn_exec_cb(insn, write_regs, QEMU_PLUGIN_CB_RW_REGS, NULL);
            } else if (is_mark(insn, memw_mark)) {
                qemu_plugin_register_vcpu_insn_exec_cb(insn, write_mem, QEMU_PLUGIN_CB_R_REGS, NULL);
            }
            break;
        case MODE_NONE:
            break;
        }
    }
}

static void at_exit(void *ud)
{
    (void)ud;
    if (mode == MODE_COUNT) {
        qemu_plugin_u64 cb = qemu_plugin_scoreboard_u64_in_struct(board, struct vcpu_counts, cb_total);
        out("h6 total: callback=%" PRIu64 " inline=%" PRIu64 "\n", qemu_plugin_u64_sum(cb),
            qemu_plugin_u64_sum(inl));
    }
    qemu_plugin_scoreboard_free(board);
    g_hash_table_destroy(reported);
    free(begin_mark);
    free(end_mark);
    free(regs_mark);
    free(write_mark);
    free(memw_mark);
}

QEMU_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc,
                                           char **argv)
{
    (void)info;
    regs_mark = strdup("h6_regs_mark");
    write_mark = strdup("h6_write_mark");
    memw_mark = strdup("h6_memw_mark");
    struct {
        const char *name;
        char **value;
    } marks[] = {{"begin", &begin_mark},
                 {"end", &end_mark},
                 {"regs", &regs_mark},
                 {"write", &write_mark},
                 {"memw", &memw_mark}};
    for (int i = 0; i < argc; i++) {
        const char *eq = strchr(argv[i], '=');
        size_t klen = eq ? (size_t)(eq - argv[i]) : 0;
        bool ok = false;
        if (eq && klen == 4 && strncmp(argv[i], "mode", 4) == 0) {
            mode = strcmp(eq + 1, "count") == 0  ? MODE_COUNT
                   : strcmp(eq + 1, "mem") == 0  ? MODE_MEM
                   : strcmp(eq + 1, "regs") == 0 ? MODE_REGS
                                                 : MODE_NONE;
            ok = mode != MODE_NONE;
        } else if (eq && klen == 7 && strncmp(argv[i], "symbols", 7) == 0) {
            ok = qemu_plugin_bool_parse("symbols", eq + 1, &report_symbols);
        }
        for (size_t m = 0; eq && m < sizeof(marks) / sizeof(marks[0]); m++) {
            if (klen == strlen(marks[m].name) && strncmp(argv[i], marks[m].name, klen) == 0) {
                free(*marks[m].value);
                *marks[m].value = strdup(eq + 1);
                ok = true;
            }
        }
        if (!ok) {
            fprintf(stderr, "h6_probe: bad argument '%s'\n", argv[i]);
            return -1;
        }
    }
    if (mode == MODE_NONE || (mode != MODE_REGS && (!begin_mark || !end_mark))) {
        fprintf(stderr, "h6_probe: need mode=count|mem|regs (and begin=, end= for count and mem)\n");
        return -1;
    }
    reported = g_hash_table_new(NULL, NULL);
    board = qemu_plugin_scoreboard_new(sizeof(struct vcpu_counts));
    inl = qemu_plugin_scoreboard_u64_in_struct(board, struct vcpu_counts, inl);
    qemu_plugin_register_vcpu_tb_trans_cb(id, tb_trans, NULL);
    qemu_plugin_register_atexit_cb(id, at_exit, NULL);
    return 0;
}
