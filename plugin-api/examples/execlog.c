// SPDX-License-Identifier: MIT
// execlog: logs every executed instruction with the memory it accessed and the registers it changed.
//
// Arguments:
//   reg=PATTERN   track registers whose gdb name matches the glob PATTERN (e.g. reg=a0, reg=t*, reg=*);
//                 may repeat; without it no registers are tracked
//   mem=on|off    log memory accesses (default on)
// Output (qemu_plugin_outs, shown with -d plugin), one line per instruction, written when the vCPU moves
// on to the next one (so register changes are known):
//   "cpu, pc, bytes, \"disassembly\"[, load|store 0xVADDR]...[, NAME=0xVALUE]..."
// where NAME=VALUE lists each tracked register whose value differs from before the instruction.
#include <qemu-plugin.h>

#include <stdio.h>
#include <string.h>

QEMU_PLUGIN_EXPORT int qemu_plugin_version = QEMU_PLUGIN_VERSION;

struct insn_info {
    char *text; // "pc, bytes, \"disassembly\""
};

struct reg {
    struct qemu_plugin_register *handle;
    const char *name;
    GByteArray *last;
};

struct vcpu {
    GString *line;   // the instruction being logged, completed when the next one starts
    GPtrArray *regs; // struct reg *
};

static GPtrArray *patterns; // char *, from reg=
static bool log_mem = true;
static GMutex lock;                          // guards infos
static GPtrArray *infos;                     // every struct insn_info, freed at exit
static struct qemu_plugin_scoreboard *vcpus; // struct vcpu per vCPU

static bool tracked(const char *name)
{
    for (guint i = 0; i < patterns->len; i++) {
        if (g_pattern_match_simple(g_ptr_array_index(patterns, i), name)) {
            return true;
        }
    }
    return false;
}

static void vcpu_init(unsigned int vcpu_index, void *udata)
{
    (void)udata;
    struct vcpu *v = qemu_plugin_scoreboard_find(vcpus, vcpu_index);
    v->line = g_string_new(NULL);
    v->regs = g_ptr_array_new();
    GArray *all = qemu_plugin_get_registers();
    for (guint i = 0; i < all->len; i++) {
        qemu_plugin_reg_descriptor *d = &g_array_index(all, qemu_plugin_reg_descriptor, i);
        if (d->name && tracked(d->name)) {
            struct reg *r = g_new0(struct reg, 1);
            r->handle = d->handle;
            r->name = d->name; // owned by the emulator, valid for the plugin's lifetime
            r->last = g_byte_array_new();
            qemu_plugin_read_register(r->handle, r->last);
            g_ptr_array_add(v->regs, r);
        }
    }
    g_array_free(all, TRUE);
}

static uint64_t as_u64(const GByteArray *bytes)
{
    uint64_t v = 0;
    for (guint i = 0; i < bytes->len && i < 8; i++) {
        v |= (uint64_t)bytes->data[i] << (8 * i); // RISC-V registers are little-endian
    }
    return v;
}

// Completes the previous instruction's line with the registers it changed, and prints it.
static void flush(unsigned int vcpu_index, struct vcpu *v)
{
    if (!v->line || !v->line->len) {
        return;
    }
    GByteArray *now = g_byte_array_new();
    for (guint i = 0; i < v->regs->len; i++) {
        struct reg *r = g_ptr_array_index(v->regs, i);
        g_byte_array_set_size(now, 0);
        if (qemu_plugin_read_register(r->handle, now) &&
            (now->len != r->last->len || memcmp(now->data, r->last->data, now->len) != 0)) {
            g_string_append_printf(v->line, ", %s=0x%" PRIx64, r->name, as_u64(now));
            g_byte_array_set_size(r->last, 0);
            g_byte_array_append(r->last, now->data, now->len);
        }
    }
    g_byte_array_free(now, TRUE);
    g_string_append_c(v->line, '\n');
    qemu_plugin_outs(v->line->str);
    g_string_truncate(v->line, 0);
    (void)vcpu_index;
}

static void insn_exec(unsigned int vcpu_index, void *udata)
{
    struct vcpu *v = qemu_plugin_scoreboard_find(vcpus, vcpu_index);
    if (!v->line) {
        return; // no init callback yet
    }
    flush(vcpu_index, v);
    const struct insn_info *info = udata;
    g_string_printf(v->line, "%u, %s", vcpu_index, info->text);
}

static void mem_access(unsigned int vcpu_index, qemu_plugin_meminfo_t info, uint64_t vaddr, void *udata)
{
    (void)udata;
    struct vcpu *v = qemu_plugin_scoreboard_find(vcpus, vcpu_index);
    if (v->line) {
        g_string_append_printf(v->line, ", %s 0x%" PRIx64, qemu_plugin_mem_is_store(info) ? "store" : "load",
                               vaddr);
    }
}

static void tb_trans(struct qemu_plugin_tb *tb, void *udata)
{
    (void)udata;
    for (size_t i = 0; i < qemu_plugin_tb_n_insns(tb); i++) {
        struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
        uint32_t bits = 0;
        size_t size = qemu_plugin_insn_data(insn, &bits, sizeof(bits));
        char *disas = qemu_plugin_insn_disas(insn);
        struct insn_info *info = g_new(struct insn_info, 1);
        info->text = g_strdup_printf("0x%" PRIx64 ", 0x%0*" PRIx32 ", \"%s\"", qemu_plugin_insn_vaddr(insn),
                                     (int)(2 * size), bits, disas ? disas : "");
        g_free(disas);
        g_mutex_lock(&lock);
        g_ptr_array_add(infos, info);
        g_mutex_unlock(&lock);
        qemu_plugin_register_vcpu_insn_exec_cb(
            insn, insn_exec, patterns->len ? QEMU_PLUGIN_CB_R_REGS : QEMU_PLUGIN_CB_NO_REGS, info);
        if (log_mem) {
            qemu_plugin_register_vcpu_mem_cb(insn, mem_access, QEMU_PLUGIN_CB_NO_REGS, QEMU_PLUGIN_MEM_RW,
                                             NULL);
        }
    }
}

static void vcpu_exit(unsigned int vcpu_index, void *udata)
{
    (void)udata;
    flush(vcpu_index, qemu_plugin_scoreboard_find(vcpus, vcpu_index));
}

static void free_reg(gpointer p)
{
    struct reg *r = p;
    g_byte_array_free(r->last, TRUE);
    g_free(r);
}

static void free_info(gpointer p)
{
    struct insn_info *info = p;
    g_free(info->text);
    g_free(info);
}

static void at_exit(void *udata)
{
    (void)udata;
    for (int i = 0; i < qemu_plugin_num_vcpus(); i++) {
        struct vcpu *v = qemu_plugin_scoreboard_find(vcpus, i);
        if (!v->line) {
            continue;
        }
        if (v->line->len) { // registers cannot be read here (not in vCPU context): print what is known
            g_string_append_c(v->line, '\n');
            qemu_plugin_outs(v->line->str);
        }
        g_string_free(v->line, TRUE);
        g_ptr_array_set_free_func(v->regs, free_reg);
        g_ptr_array_free(v->regs, TRUE);
    }
    qemu_plugin_scoreboard_free(vcpus);
    g_ptr_array_free(infos, TRUE);
    g_ptr_array_free(patterns, TRUE);
}

QEMU_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc,
                                           char **argv)
{
    (void)info;
    patterns = g_ptr_array_new_with_free_func(g_free);
    for (int i = 0; i < argc; i++) {
        g_auto(GStrv) kv = g_strsplit(argv[i], "=", 2);
        bool ok = kv[1] != NULL;
        if (ok && g_strcmp0(kv[0], "reg") == 0) {
            g_ptr_array_add(patterns, g_strdup(kv[1]));
        } else if (ok && g_strcmp0(kv[0], "mem") == 0) {
            ok = qemu_plugin_bool_parse(kv[0], kv[1], &log_mem);
        } else {
            ok = false;
        }
        if (!ok) {
            fprintf(stderr, "execlog: bad argument '%s' (expected reg=PATTERN, mem=on|off)\n", argv[i]);
            g_ptr_array_free(patterns, TRUE);
            return -1;
        }
    }
    infos = g_ptr_array_new_with_free_func(free_info);
    vcpus = qemu_plugin_scoreboard_new(sizeof(struct vcpu));
    qemu_plugin_register_vcpu_init_cb(id, vcpu_init, NULL);
    qemu_plugin_register_vcpu_exit_cb(id, vcpu_exit, NULL);
    qemu_plugin_register_vcpu_tb_trans_cb(id, tb_trans, NULL);
    qemu_plugin_register_atexit_cb(id, at_exit, NULL);
    return 0;
}
