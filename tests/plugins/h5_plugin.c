// SPDX-License-Identifier: MIT
// A test plugin (API version 7) for the host's runtime semantics (h5_*): reset and uninstall stop the old
// instrumentation, flush callbacks, qemu_plugin_set_pc, memory writes over translated code, time control
// and discontinuities. One mode per run (mode=NAME); guest places are found by their ELF symbol.
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <qemu-plugin.h>

QEMU_PLUGIN_EXPORT int qemu_plugin_version = QEMU_PLUGIN_VERSION;

static qemu_plugin_id_t self;
static char mode[32];
static uint64_t after = 10;    // reset/uninstall: after this many instruction callbacks
static uint64_t step_ns = 100; // time: virtual ns per instruction
static uint64_t before, later, late, flushes;
static bool done;
static const void *time_handle;
static uint64_t now_ns;

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
    char line[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    qemu_plugin_outs(line);
}

// --- registers by name ---
static struct qemu_plugin_register *reg_handle(const char *name)
{
    GArray *regs = qemu_plugin_get_registers();
    struct qemu_plugin_register *h = NULL;
    for (guint i = 0; i < regs->len; i++) {
        qemu_plugin_reg_descriptor *d = &g_array_index(regs, qemu_plugin_reg_descriptor, i);
        if (strcmp(d->name, name) == 0) {
            h = d->handle;
        }
    }
    g_array_free(regs, TRUE);
    return h;
}

static uint64_t reg_read(const char *name)
{
    GByteArray *buf = g_byte_array_new();
    uint64_t v = 0;
    if (qemu_plugin_read_register(reg_handle(name), buf) && buf->len <= sizeof(v)) {
        memcpy(&v, buf->data, buf->len);
    }
    g_byte_array_free(buf, TRUE);
    return v;
}

static bool reg_write(const char *name, uint64_t v)
{
    GByteArray *buf = g_byte_array_new();
    g_byte_array_append(buf, (const guint8 *)&v, sizeof(v));
    bool ok = qemu_plugin_write_register(reg_handle(name), buf);
    g_byte_array_free(buf, TRUE);
    return ok;
}

// --- reset / uninstall ---
static void after_reset(void *ud);

static void counted_after(unsigned vcpu, void *ud)
{
    (void)vcpu, (void)ud;
    later++;
}

static void tb_trans_after(struct qemu_plugin_tb *tb, void *ud)
{
    (void)ud;
    for (size_t i = 0; i < qemu_plugin_tb_n_insns(tb); i++) {
        qemu_plugin_register_vcpu_insn_exec_cb(qemu_plugin_tb_get_insn(tb, i), counted_after,
                                               QEMU_PLUGIN_CB_NO_REGS, NULL);
    }
}

static void at_exit_after(void *ud)
{
    (void)ud;
    say("before %" PRIu64 " late %" PRIu64 " after %" PRIu64 "\n", before, late, later);
}

static void counted(unsigned vcpu, void *ud)
{
    (void)vcpu, (void)ud;
    if (done) {
        late++; // an old callback after the reset/uninstall callback ran: must never happen
        say("late callback\n");
        return;
    }
    before++;
    if (before == after) {
        if (strcmp(mode, "reset") == 0) {
            qemu_plugin_reset(self, after_reset, NULL);
        } else {
            qemu_plugin_uninstall(self, after_reset, NULL);
        }
    }
}

static void after_reset(void *ud)
{
    (void)ud;
    done = true;
    say("%s done after %" PRIu64 "\n", mode, before);
    if (strcmp(mode, "reset") == 0) {
        // Everything was dropped: what is registered now is all that runs from here on.
        qemu_plugin_register_vcpu_tb_trans_cb(self, tb_trans_after, NULL);
        qemu_plugin_register_atexit_cb(self, at_exit_after, NULL);
    }
}

// --- set_pc: skip the instruction at h5_skip (writing a2 first), jump from h5_jump to where a4 points ---

static void skip(unsigned vcpu, void *ud)
{
    (void)vcpu;
    if (!reg_write("a2", 0x1234)) {
        say("write a2 failed\n");
    }
    qemu_plugin_set_pc((uint64_t)(uintptr_t)ud);
    say("set_pc returned\n"); // never
}

static void jump(unsigned vcpu, void *ud)
{
    (void)vcpu, (void)ud;
    qemu_plugin_set_pc(reg_read("a4"));
}

static void report(unsigned vcpu, void *ud)
{
    (void)vcpu, (void)ud;
    say("report a0=0x%" PRIx64 " a1=0x%" PRIx64 " a2=0x%" PRIx64 " a3=0x%" PRIx64 "\n", reg_read("a0"),
        reg_read("a1"), reg_read("a2"), reg_read("a3"));
}

// --- memory writes: at h5_patch, rewrite the instruction a4 points to as `li a0, 7` ---
static void patch(unsigned vcpu, void *ud)
{
    (void)vcpu, (void)ud;
    uint64_t patched_pc = reg_read("a4");
    uint32_t insn = 0x00700513; // addi a0, zero, 7
    GByteArray *buf = g_byte_array_new();
    g_byte_array_append(buf, (const guint8 *)&insn, sizeof(insn));
    bool ok;
    if (strcmp(mode, "patch-hw") == 0) {
        uint64_t hw = 0;
        ok = qemu_plugin_translate_vaddr(patched_pc, &hw) &&
             qemu_plugin_write_memory_hwaddr(hw, buf) == QEMU_PLUGIN_HWADDR_OPERATION_OK;
    } else {
        ok = qemu_plugin_write_memory_vaddr(patched_pc, buf);
    }
    g_byte_array_free(buf, TRUE);
    say("patched %s\n", ok ? "ok" : "FAILED");
}

// --- time control: every instruction moves the guest clock forward by step_ns ---
static void tick(unsigned vcpu, void *ud)
{
    (void)vcpu, (void)ud;
    now_ns += step_ns;
    qemu_plugin_update_ns(time_handle, (int64_t)now_ns);
}

static void report_time(unsigned vcpu, void *ud)
{
    (void)vcpu, (void)ud;
    say("time a0=%" PRIu64 " a1=%" PRIu64 " a2=0x%" PRIx64 " a3=%" PRIu64 " plugin_ns=%" PRIu64 "\n",
        reg_read("a0"), reg_read("a1"), reg_read("a2"), reg_read("a3"), now_ns);
}

// --- discontinuities ---
static void discon(unsigned vcpu, enum qemu_plugin_discon_type type, uint64_t from, uint64_t to, void *ud)
{
    (void)vcpu, (void)ud;
    say("discon %s from 0x%" PRIx64 " to 0x%" PRIx64 "\n",
        type == QEMU_PLUGIN_DISCON_INTERRUPT   ? "interrupt"
        : type == QEMU_PLUGIN_DISCON_EXCEPTION ? "exception"
                                               : "hostcall",
        from, to);
}

static void flushed(void *ud)
{
    (void)ud;
    flushes++;
}

static void tb_trans(struct qemu_plugin_tb *tb, void *ud)
{
    (void)ud;
    for (size_t i = 0; i < qemu_plugin_tb_n_insns(tb); i++) {
        struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
        const char *sym = qemu_plugin_insn_symbol(insn);
        uint64_t pc = qemu_plugin_insn_vaddr(insn);
        if (strcmp(mode, "reset") == 0 || strcmp(mode, "uninstall") == 0) {
            qemu_plugin_register_vcpu_insn_exec_cb(insn, counted, QEMU_PLUGIN_CB_NO_REGS, NULL);
        } else if (strcmp(mode, "time") == 0) {
            qemu_plugin_register_vcpu_insn_exec_cb(insn, tick, QEMU_PLUGIN_CB_NO_REGS, NULL);
        }
        if (!sym) {
            continue;
        }
        if (strcmp(mode, "setpc") == 0 && strcmp(sym, "h5_skip") == 0) {
            qemu_plugin_register_vcpu_insn_exec_cb(insn, skip, QEMU_PLUGIN_CB_RW_REGS_PC,
                                                   (void *)(uintptr_t)(pc + qemu_plugin_insn_size(insn)));
        } else if (strcmp(mode, "setpc") == 0 && strcmp(sym, "h5_jump") == 0) {
            qemu_plugin_register_vcpu_insn_exec_cb(insn, jump, QEMU_PLUGIN_CB_RW_REGS_PC, NULL);
        } else if (strncmp(mode, "patch", 5) == 0 && strcmp(sym, "h5_patch") == 0) {
            qemu_plugin_register_vcpu_insn_exec_cb(insn, patch, QEMU_PLUGIN_CB_R_REGS, NULL);
        } else if (strcmp(sym, "h5_report") == 0) {
            qemu_plugin_register_vcpu_insn_exec_cb(insn, strcmp(mode, "time") == 0 ? report_time : report,
                                                   QEMU_PLUGIN_CB_R_REGS, NULL);
        }
    }
}

static void at_exit(void *ud)
{
    (void)ud;
    if (strcmp(mode, "flush") == 0) {
        say("flushes %" PRIu64 "\n", flushes);
    } else if (strcmp(mode, "reset") == 0 || strcmp(mode, "uninstall") == 0) {
        say("no reset: before %" PRIu64 "\n", before);
    }
}

static bool parse_u64(const char *s, uint64_t *out)
{
    char *end;
    *out = strtoull(s, &end, 0);
    return *s && !*end;
}

QEMU_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc,
                                           char **argv)
{
    (void)info;
    self = id;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "mode=", 5) == 0 && strlen(a + 5) < sizeof(mode)) {
            strcpy(mode, a + 5);
        } else if (strncmp(a, "after=", 6) == 0 && parse_u64(a + 6, &after)) {
        } else if (strncmp(a, "step=", 5) == 0 && parse_u64(a + 5, &step_ns)) {
        } else {
            return 1;
        }
    }
    if (strcmp(mode, "time") == 0) {
        time_handle = qemu_plugin_request_time_control();
        if (!time_handle) {
            qemu_plugin_outs("time control refused\n");
            return 2;
        }
        // A second request gets nothing: one plugin controls time.
        if (qemu_plugin_request_time_control() != NULL) {
            qemu_plugin_outs("second time control request granted\n");
        }
    }
    if (strcmp(mode, "discon") == 0) {
        qemu_plugin_register_vcpu_discon_cb(id, QEMU_PLUGIN_DISCON_ALL, discon, NULL);
    }
    qemu_plugin_register_flush_cb(id, flushed, NULL);
    qemu_plugin_register_vcpu_tb_trans_cb(id, tb_trans, NULL);
    qemu_plugin_register_atexit_cb(id, at_exit, NULL);
    return 0;
}
