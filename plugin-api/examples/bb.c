// SPDX-License-Identifier: MIT
// bb: counts executed translation blocks and the instructions in them, per vCPU, in a scoreboard.
//
// Arguments:
//   inline=on|off   count with inline ops (default on) or with a callback per block
// Output (qemu_plugin_outs, shown with -d plugin) at exit: "cpu N bb: B insns: I" for each vCPU, then
// "bb: B insns: I" for all of them.
#include <qemu-plugin.h>

#include <stdio.h>

QEMU_PLUGIN_EXPORT int qemu_plugin_version = QEMU_PLUGIN_VERSION;

struct counts {
    uint64_t bb, insns;
};

static struct qemu_plugin_scoreboard *board;
static qemu_plugin_u64 bb_count, insn_count;
static bool use_inline = true;

static void tb_exec(unsigned int vcpu_index, void *udata)
{
    struct counts *c = qemu_plugin_scoreboard_find(board, vcpu_index);
    c->bb++;
    c->insns += (uintptr_t)udata;
}

static void tb_trans(struct qemu_plugin_tb *tb, void *udata)
{
    (void)udata;
    size_t n = qemu_plugin_tb_n_insns(tb);
    if (use_inline) {
        qemu_plugin_register_vcpu_tb_exec_inline_per_vcpu(tb, QEMU_PLUGIN_INLINE_ADD_U64, bb_count, 1);
        qemu_plugin_register_vcpu_tb_exec_inline_per_vcpu(tb, QEMU_PLUGIN_INLINE_ADD_U64, insn_count, n);
    } else {
        qemu_plugin_register_vcpu_tb_exec_cb(tb, tb_exec, QEMU_PLUGIN_CB_NO_REGS, (void *)(uintptr_t)n);
    }
}

static void at_exit(void *udata)
{
    (void)udata;
    char line[128];
    for (int i = 0; i < qemu_plugin_num_vcpus(); i++) {
        snprintf(line, sizeof(line), "cpu %d bb: %" PRIu64 " insns: %" PRIu64 "\n", i,
                 qemu_plugin_u64_get(bb_count, i), qemu_plugin_u64_get(insn_count, i));
        qemu_plugin_outs(line);
    }
    snprintf(line, sizeof(line), "bb: %" PRIu64 " insns: %" PRIu64 "\n", qemu_plugin_u64_sum(bb_count),
             qemu_plugin_u64_sum(insn_count));
    qemu_plugin_outs(line);
    qemu_plugin_scoreboard_free(board);
}

QEMU_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc,
                                           char **argv)
{
    (void)info;
    for (int i = 0; i < argc; i++) {
        g_auto(GStrv) kv = g_strsplit(argv[i], "=", 2);
        if (!kv[1] || g_strcmp0(kv[0], "inline") != 0 || !qemu_plugin_bool_parse(kv[0], kv[1], &use_inline)) {
            fprintf(stderr, "bb: bad argument '%s' (expected inline=on|off)\n", argv[i]);
            return -1;
        }
    }
    board = qemu_plugin_scoreboard_new(sizeof(struct counts));
    bb_count = qemu_plugin_scoreboard_u64_in_struct(board, struct counts, bb);
    insn_count = qemu_plugin_scoreboard_u64_in_struct(board, struct counts, insns);
    qemu_plugin_register_vcpu_tb_trans_cb(id, tb_trans, NULL);
    qemu_plugin_register_atexit_cb(id, at_exit, NULL);
    return 0;
}
