// SPDX-License-Identifier: MIT
// howvec: histogram of the executed RISC-V instructions by class (loads, stores, branches, ...).
//
// Arguments:
//   inline=on|off   count with inline ops (default on) or a callback per instruction
// Output (qemu_plugin_outs, shown with -d plugin) at exit: "class: count" for each class that ran, in
// table order, then "total: N".
#include <qemu-plugin.h>

#include <stdio.h>

QEMU_PLUGIN_EXPORT int qemu_plugin_version = QEMU_PLUGIN_VERSION;

// Classes by major opcode (bits 6:2 of a 32-bit instruction) or, for 16-bit ones, the C extension.
enum klass {
    LOAD,
    STORE,
    BRANCH,
    JUMP,
    ALU_IMM,
    ALU_REG,
    UPPER,
    SYSTEM,
    ATOMIC,
    FP_LOAD,
    FP_STORE,
    FP_OP,
    FENCE,
    COMPRESSED,
    OTHER,
    N_CLASSES
};
static const char *const names[N_CLASSES] = {
    "load",   "store",   "branch",   "jump", "alu-imm", "alu-reg",    "lui/auipc", "system",
    "atomic", "fp-load", "fp-store", "fp",   "fence",   "compressed", "other",
};

static struct qemu_plugin_scoreboard *board; // uint64_t counts[N_CLASSES] per vCPU
static bool use_inline = true;

static enum klass classify(uint32_t insn, size_t size)
{
    if (size == 2) {
        return COMPRESSED;
    }
    switch ((insn >> 2) & 0x1f) {
    case 0x00:
        return LOAD;
    case 0x01:
        return FP_LOAD;
    case 0x03:
        return FENCE;
    case 0x04:
    case 0x06:
        return ALU_IMM; // OP-IMM, OP-IMM-32
    case 0x05:
    case 0x0d:
        return UPPER; // AUIPC, LUI
    case 0x08:
        return STORE;
    case 0x09:
        return FP_STORE;
    case 0x0b:
        return ATOMIC;
    case 0x0c:
    case 0x0e:
        return ALU_REG; // OP, OP-32
    case 0x10:
    case 0x11:
    case 0x12:
    case 0x13:
    case 0x14:
        return FP_OP; // FMADD..FNMADD, OP-FP
    case 0x18:
        return BRANCH;
    case 0x19:
    case 0x1b:
        return JUMP; // JALR, JAL
    case 0x1c:
        return SYSTEM;
    default:
        return OTHER;
    }
}

static void insn_exec(unsigned int vcpu_index, void *udata)
{
    uint64_t *counts = qemu_plugin_scoreboard_find(board, vcpu_index);
    counts[(uintptr_t)udata]++;
}

static void tb_trans(struct qemu_plugin_tb *tb, void *udata)
{
    (void)udata;
    for (size_t i = 0; i < qemu_plugin_tb_n_insns(tb); i++) {
        struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
        uint32_t bits = 0;
        size_t size = qemu_plugin_insn_data(insn, &bits, sizeof(bits)); // little-endian guest and host
        enum klass k = classify(bits, size);
        if (use_inline) {
            qemu_plugin_u64 entry = {board, k * sizeof(uint64_t)};
            qemu_plugin_register_vcpu_insn_exec_inline_per_vcpu(insn, QEMU_PLUGIN_INLINE_ADD_U64, entry, 1);
        } else {
            qemu_plugin_register_vcpu_insn_exec_cb(insn, insn_exec, QEMU_PLUGIN_CB_NO_REGS,
                                                   (void *)(uintptr_t)k);
        }
    }
}

static void at_exit(void *udata)
{
    (void)udata;
    GString *out = g_string_new(NULL);
    uint64_t total = 0;
    for (int k = 0; k < N_CLASSES; k++) {
        qemu_plugin_u64 entry = {board, k * sizeof(uint64_t)};
        uint64_t n = qemu_plugin_u64_sum(entry);
        if (n) {
            g_string_append_printf(out, "%s: %" PRIu64 "\n", names[k], n);
        }
        total += n;
    }
    g_string_append_printf(out, "total: %" PRIu64 "\n", total);
    qemu_plugin_outs(out->str);
    g_string_free(out, TRUE);
    qemu_plugin_scoreboard_free(board);
}

QEMU_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc,
                                           char **argv)
{
    (void)info;
    for (int i = 0; i < argc; i++) {
        g_auto(GStrv) kv = g_strsplit(argv[i], "=", 2);
        if (!kv[1] || g_strcmp0(kv[0], "inline") != 0 || !qemu_plugin_bool_parse(kv[0], kv[1], &use_inline)) {
            fprintf(stderr, "howvec: bad argument '%s' (expected inline=on|off)\n", argv[i]);
            return -1;
        }
    }
    board = qemu_plugin_scoreboard_new(N_CLASSES * sizeof(uint64_t));
    qemu_plugin_register_vcpu_tb_trans_cb(id, tb_trans, NULL);
    qemu_plugin_register_atexit_cb(id, at_exit, NULL);
    return 0;
}
