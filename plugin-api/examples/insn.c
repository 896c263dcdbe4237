// SPDX-License-Identifier: MIT
// insn: counts the guest instructions executed, with an inline op (no call) or a callback per instruction.
//
// Arguments:
//   inline=on|off   count with an inline add in the generated code (default off: a callback per instruction)
// Output (qemu_plugin_outs, shown with -d plugin): "insns: N" at exit.
//
// One source for every API version: built as libinsn.so (v7), libinsn-v4.so and libinsn-v1.so. Version 1
// has no scoreboards, so there the count is one shared counter the inline op or callback adds to.
#include <qemu-plugin.h>

#include <stdio.h>
#include <string.h>

QEMU_PLUGIN_EXPORT int qemu_plugin_version = QEMU_PLUGIN_VERSION;

static bool use_inline;

#if QEMU_PLUGIN_VERSION == 1
static uint64_t insn_count; // shared by all vCPUs; the callback adds atomically

static uint64_t total(void)
{
    return __atomic_load_n(&insn_count, __ATOMIC_RELAXED);
}
#else
static struct qemu_plugin_scoreboard *counts; // one uint64_t per vCPU
static qemu_plugin_u64 insn_count;

static uint64_t total(void)
{
    return qemu_plugin_u64_sum(insn_count);
}
#endif

static void insn_exec(unsigned int vcpu_index, void *udata)
{
    (void)udata;
#if QEMU_PLUGIN_VERSION == 1
    (void)vcpu_index;
    __atomic_fetch_add(&insn_count, 1, __ATOMIC_RELAXED);
#else
    qemu_plugin_u64_add(insn_count, vcpu_index, 1);
#endif
}

#if QEMU_PLUGIN_VERSION >= 7
static void tb_trans(struct qemu_plugin_tb *tb, void *udata)
{
    (void)udata;
#else
static void tb_trans(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    (void)id;
#endif
    size_t n = qemu_plugin_tb_n_insns(tb);
    for (size_t i = 0; i < n; i++) {
        struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
        if (!use_inline) {
            qemu_plugin_register_vcpu_insn_exec_cb(insn, insn_exec, QEMU_PLUGIN_CB_NO_REGS, NULL);
        } else {
#if QEMU_PLUGIN_VERSION == 1
            qemu_plugin_register_vcpu_insn_exec_inline(insn, QEMU_PLUGIN_INLINE_ADD_U64, &insn_count, 1);
#else
            qemu_plugin_register_vcpu_insn_exec_inline_per_vcpu(insn, QEMU_PLUGIN_INLINE_ADD_U64, insn_count,
                                                                1);
#endif
        }
    }
}

#if QEMU_PLUGIN_VERSION >= 7
static void at_exit(void *udata)
#else
static void at_exit(qemu_plugin_id_t id, void *udata)
#endif
{
#if QEMU_PLUGIN_VERSION < 7
    (void)id;
#endif
    (void)udata;
    char line[64];
    snprintf(line, sizeof(line), "insns: %" PRIu64 "\n", total());
    qemu_plugin_outs(line);
#if QEMU_PLUGIN_VERSION >= 2
    qemu_plugin_scoreboard_free(counts);
#endif
}

QEMU_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc,
                                           char **argv)
{
    (void)info;
    for (int i = 0; i < argc; i++) {
        char *eq = strchr(argv[i], '=');
        if (eq) {
            *eq = '\0'; // argv stays ours for the plugin's lifetime
        }
        if (!eq || strcmp(argv[i], "inline") != 0 || !qemu_plugin_bool_parse(argv[i], eq + 1, &use_inline)) {
            fprintf(stderr, "insn: bad argument '%s%s%s' (expected inline=on|off)\n", argv[i], eq ? "=" : "",
                    eq ? eq + 1 : "");
            return -1;
        }
    }
#if QEMU_PLUGIN_VERSION >= 2
    counts = qemu_plugin_scoreboard_new(sizeof(uint64_t));
    insn_count = qemu_plugin_scoreboard_u64(counts);
#endif
#if QEMU_PLUGIN_VERSION >= 7
    qemu_plugin_register_vcpu_tb_trans_cb(id, tb_trans, NULL);
#else
    qemu_plugin_register_vcpu_tb_trans_cb(id, tb_trans);
#endif
    qemu_plugin_register_atexit_cb(id, at_exit, NULL);
    return 0;
}
