// SPDX-License-Identifier: MIT
// insn: counts the guest instructions executed, with an inline op (no call) or a callback per instruction.
//
// Arguments:
//   inline=on|off   count with an inline add in the generated code (default off: a callback per instruction)
// Output (qemu_plugin_outs, shown with -d plugin): "insns: N" at exit.
//
// One source for every API version: built as libinsn.so (v7), libinsn-v4.so and libinsn-v1.so. Version 1
// has no scoreboards: there the callbacks count per vCPU in an array of the plugin's own, the inline op in
// one shared counter.
#include <qemu-plugin.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

QEMU_PLUGIN_EXPORT int qemu_plugin_version = QEMU_PLUGIN_VERSION;

static bool use_inline;

#if QEMU_PLUGIN_VERSION == 1
// No scoreboards: the callbacks count in one cache line per vCPU (each vCPU only writes its own, so no
// atomics), the inline op in one shared counter (an inline op has no vCPU index in version 1).
struct vcpu_count {
    uint64_t n;
    char pad[56];
};
static struct vcpu_count *per_vcpu;
static int n_vcpus;
static uint64_t inline_count;

static uint64_t total(void)
{
    uint64_t sum = inline_count;
    for (int i = 0; i < n_vcpus; i++) {
        sum += per_vcpu[i].n;
    }
    return sum;
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
    per_vcpu[vcpu_index].n++;
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
            qemu_plugin_register_vcpu_insn_exec_inline(insn, QEMU_PLUGIN_INLINE_ADD_U64, &inline_count, 1);
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
#else
    free(per_vcpu);
#endif
}

QEMU_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc,
                                           char **argv)
{
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
#if QEMU_PLUGIN_VERSION == 1
    n_vcpus = info->system_emulation ? info->system.max_vcpus : 1;
    per_vcpu = calloc(n_vcpus > 0 ? (size_t)n_vcpus : 1, sizeof(*per_vcpu));
    if (!per_vcpu) {
        return -1;
    }
#else
    (void)info;
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
