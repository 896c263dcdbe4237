// SPDX-License-Identifier: MIT
// A test plugin (API version 7) for the parts of the API the examples do not use: conditional callbacks,
// STORE_U64, insn_data/disas/symbol, vcpu_for_each, discontinuities, reset, registers and bool_parse.
#include <stdio.h>
#include <string.h>

#include <qemu-plugin.h>

QEMU_PLUGIN_EXPORT int qemu_plugin_version = QEMU_PLUGIN_VERSION;

static qemu_plugin_id_t self;
static struct qemu_plugin_scoreboard *sb;
static qemu_plugin_u64 execs, last;
static int translations;
static bool do_reset;

static void out(const char *fmt, unsigned long long a, unsigned long long b)
{
    char line[160];
    snprintf(line, sizeof(line), fmt, a, b);
    qemu_plugin_outs(line);
}

static void third(unsigned vcpu, void *ud)
{
    out("third execution of 0x%llx on cpu %llu\n", (unsigned long long)(uintptr_t)ud, vcpu);
}

static void read_pc(unsigned vcpu, void *ud)
{
    (void)vcpu, (void)ud;
    GArray *regs = qemu_plugin_get_registers();
    char line[80];
    snprintf(line, sizeof(line), "registers: %u\n", regs->len);
    qemu_plugin_outs(line);
    g_array_free(regs, TRUE);
}

static void tb_trans(struct qemu_plugin_tb *tb, void *ud)
{
    (void)ud;
    uint64_t pc = qemu_plugin_tb_vaddr(tb);
    qemu_plugin_register_vcpu_tb_exec_inline_per_vcpu(tb, QEMU_PLUGIN_INLINE_ADD_U64, execs, 1);
    qemu_plugin_register_vcpu_tb_exec_inline_per_vcpu(tb, QEMU_PLUGIN_INLINE_STORE_U64, last, pc);
    struct qemu_plugin_insn *first = qemu_plugin_tb_get_insn(tb, 0);
    qemu_plugin_register_vcpu_insn_exec_cond_cb(first, third, QEMU_PLUGIN_CB_NO_REGS, QEMU_PLUGIN_COND_EQ,
                                                execs, 3, (void *)(uintptr_t)pc);
    qemu_plugin_register_vcpu_insn_exec_cond_cb(first, read_pc, QEMU_PLUGIN_CB_R_REGS, QEMU_PLUGIN_COND_NEVER,
                                                execs, 0, NULL);
    if (translations++ == 0) {
        struct qemu_plugin_insn *second = qemu_plugin_tb_get_insn(tb, 1);
        uint8_t bytes[8] = {0};
        size_t n = qemu_plugin_insn_data(second, bytes, sizeof(bytes));
        char *dis = qemu_plugin_insn_disas(second);
        const char *sym = qemu_plugin_insn_symbol(first);
        char line[200];
        snprintf(line, sizeof(line),
                 "trans 0x%llx insns %zu sym %s; insn1 %zu bytes %02x%02x%02x%02x at 0x%llx: %s\n",
                 (unsigned long long)pc, qemu_plugin_tb_n_insns(tb), sym ? sym : "-", n, bytes[3], bytes[2],
                 bytes[1], bytes[0], (unsigned long long)qemu_plugin_insn_vaddr(second), dis);
        g_free(dis);
        qemu_plugin_outs(line);
    }
    if (qemu_plugin_tb_get_insn(tb, 99) != NULL) {
        qemu_plugin_outs("tb_get_insn out of range gave an insn\n");
    }
}

static void each(unsigned vcpu, void *ud)
{
    (void)ud;
    out("each %llu\n", vcpu, 0);
}

static void discon(unsigned vcpu, enum qemu_plugin_discon_type type, uint64_t from, uint64_t to, void *ud)
{
    (void)ud;
    char line[120];
    snprintf(line, sizeof(line), "discon cpu %u type %d 0x%llx -> 0x%llx\n", vcpu, (int)type,
             (unsigned long long)from, (unsigned long long)to);
    qemu_plugin_outs(line);
}

static void after_reset(void *ud)
{
    (void)ud;
    qemu_plugin_outs("reset done\n");
}

static void at_exit(void *ud)
{
    (void)ud;
    out("execs %llu last 0x%llx\n", qemu_plugin_u64_sum(execs), qemu_plugin_u64_get(last, 0));
    qemu_plugin_vcpu_for_each(self, each, NULL);
    qemu_plugin_scoreboard_free(sb);
}

static void vcpu_init(unsigned vcpu, void *ud)
{
    (void)ud;
    out("init %llu of %llu\n", vcpu, (unsigned long long)qemu_plugin_num_vcpus());
    if (do_reset) {
        qemu_plugin_reset(self, after_reset, NULL);
    }
}

QEMU_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc,
                                           char **argv)
{
    self = id;
    char line[160];
    snprintf(line, sizeof(line), "install %s v%d-%d system=%d smp=%d max=%d\n", info->target_name,
             info->version.min, info->version.cur, info->system_emulation, info->system.smp_vcpus,
             info->system.max_vcpus);
    qemu_plugin_outs(line);
    for (int i = 0; i < argc; i++) {
        if (strncmp(argv[i], "reset=", 6) != 0 || !qemu_plugin_bool_parse("reset", argv[i] + 6, &do_reset)) {
            return 2;
        }
    }
    sb = qemu_plugin_scoreboard_new(2 * sizeof(uint64_t));
    execs = qemu_plugin_scoreboard_u64(sb);
    last = (qemu_plugin_u64){sb, sizeof(uint64_t)};
    qemu_plugin_register_vcpu_tb_trans_cb(id, tb_trans, NULL);
    qemu_plugin_register_vcpu_init_cb(id, vcpu_init, NULL);
    qemu_plugin_register_vcpu_discon_cb(id, QEMU_PLUGIN_DISCON_EXCEPTION, discon, NULL);
    qemu_plugin_register_atexit_cb(id, at_exit, NULL);
    return 0;
}
