// SPDX-License-Identifier: MIT
// mem: counts guest loads and stores, and can log each access with its address, size, value and target.
//
// Arguments:
//   inline=on|off   count the accesses with one inline op instead of callbacks (default off); an inline op
//                   cannot tell loads from stores, so this mode reports only their sum, and no trace
//   rw=r|w|rw       which accesses to instrument (default rw)
//   trace=on|off    log every access (default off): "load|store vaddr=0x.. paddr=0x.. size=N [value=0x..]
//                   [io=DEVICE]"; values need API v4 (not in the v1 build)
// Output (qemu_plugin_outs, shown with -d plugin) at exit: "loads: N stores: M", or "accesses: N" inline.
//
// Built as libmem.so (v7) and libmem-v1.so (QEMU 7.2's API: per-vCPU counters of its own, no scoreboard).
#include <qemu-plugin.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

QEMU_PLUGIN_EXPORT int qemu_plugin_version = QEMU_PLUGIN_VERSION;

static bool use_inline, trace;
static enum qemu_plugin_mem_rw rw = QEMU_PLUGIN_MEM_RW;

#if QEMU_PLUGIN_VERSION == 1
// No scoreboards: callbacks count in one cache line per vCPU (only that vCPU writes it: no atomics), the
// inline op, which has no vCPU index in version 1, in one shared counter.
struct counts {
    uint64_t loads, stores;
    char pad[48];
};
static struct counts *per_vcpu;
static int n_vcpus;
static uint64_t accesses;
#define ADD(counter, vcpu) (per_vcpu[vcpu].counter++)
#define TOTAL(counter) total_##counter()
#define TOTAL_OF(counter)                   \
    static uint64_t total_##counter(void)   \
    {                                       \
        uint64_t sum = 0;                   \
        for (int i = 0; i < n_vcpus; i++) { \
            sum += per_vcpu[i].counter;     \
        }                                   \
        return sum;                         \
    }
TOTAL_OF(loads)
TOTAL_OF(stores)
static uint64_t total_accesses(void)
{
    return accesses;
}
#else
struct counts {
    uint64_t loads, stores, accesses;
};
static struct qemu_plugin_scoreboard *board;
static qemu_plugin_u64 loads, stores, accesses;
#define ADD(counter, vcpu) qemu_plugin_u64_add((counter), (vcpu), 1)
#define TOTAL(counter) qemu_plugin_u64_sum(counter)
#endif

static void log_access(bool store, qemu_plugin_meminfo_t info, uint64_t vaddr)
{
    char line[256];
    int n = snprintf(line, sizeof(line), "%s vaddr=0x%" PRIx64, store ? "store" : "load", vaddr);
    struct qemu_plugin_hwaddr *hw = qemu_plugin_get_hwaddr(info, vaddr);
    if (hw) {
        n += snprintf(line + n, sizeof(line) - n, " paddr=0x%" PRIx64, qemu_plugin_hwaddr_phys_addr(hw));
    }
    n += snprintf(line + n, sizeof(line) - n, " size=%u", 1u << qemu_plugin_mem_size_shift(info));
#if QEMU_PLUGIN_VERSION >= 4
    qemu_plugin_mem_value v = qemu_plugin_mem_get_value(info);
    switch (v.type) {
    case QEMU_PLUGIN_MEM_VALUE_U8:
        n += snprintf(line + n, sizeof(line) - n, " value=0x%02x", v.data.u8);
        break;
    case QEMU_PLUGIN_MEM_VALUE_U16:
        n += snprintf(line + n, sizeof(line) - n, " value=0x%04x", v.data.u16);
        break;
    case QEMU_PLUGIN_MEM_VALUE_U32:
        n += snprintf(line + n, sizeof(line) - n, " value=0x%08x", v.data.u32);
        break;
    case QEMU_PLUGIN_MEM_VALUE_U64:
        n += snprintf(line + n, sizeof(line) - n, " value=0x%016" PRIx64, v.data.u64);
        break;
    case QEMU_PLUGIN_MEM_VALUE_U128:
        n += snprintf(line + n, sizeof(line) - n, " value=0x%016" PRIx64 "%016" PRIx64, v.data.u128.high,
                      v.data.u128.low);
        break;
    }
#endif
    if (hw && qemu_plugin_hwaddr_is_io(hw)) {
        const char *dev = qemu_plugin_hwaddr_device_name(hw);
        n += snprintf(line + n, sizeof(line) - n, " io=%s", dev ? dev : "?");
    }
    snprintf(line + n, sizeof(line) - n, "\n");
    qemu_plugin_outs(line);
}

static void mem_access(unsigned int vcpu_index, qemu_plugin_meminfo_t info, uint64_t vaddr, void *udata)
{
    (void)udata;
    bool store = qemu_plugin_mem_is_store(info);
    if (store) {
        ADD(stores, vcpu_index);
    } else {
        ADD(loads, vcpu_index);
    }
    if (trace) {
        log_access(store, info, vaddr);
    }
}

static void instrument(struct qemu_plugin_tb *tb)
{
    size_t n = qemu_plugin_tb_n_insns(tb);
    for (size_t i = 0; i < n; i++) {
        struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
        if (!use_inline) {
            qemu_plugin_register_vcpu_mem_cb(insn, mem_access, QEMU_PLUGIN_CB_NO_REGS, rw, NULL);
            continue;
        }
#if QEMU_PLUGIN_VERSION == 1
        qemu_plugin_register_vcpu_mem_inline(insn, rw, QEMU_PLUGIN_INLINE_ADD_U64, &accesses, 1);
#else
        qemu_plugin_register_vcpu_mem_inline_per_vcpu(insn, rw, QEMU_PLUGIN_INLINE_ADD_U64, accesses, 1);
#endif
    }
}

#if QEMU_PLUGIN_VERSION >= 7
static void tb_trans(struct qemu_plugin_tb *tb, void *udata)
{
    (void)udata;
    instrument(tb);
}

static void at_exit(void *udata)
{
    (void)udata;
#else
static void tb_trans(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    (void)id;
    instrument(tb);
}

static void at_exit(qemu_plugin_id_t id, void *udata)
{
    (void)id;
    (void)udata;
#endif
    char line[96];
    if (use_inline) {
        snprintf(line, sizeof(line), "accesses: %" PRIu64 "\n", TOTAL(accesses));
    } else {
        snprintf(line, sizeof(line), "loads: %" PRIu64 " stores: %" PRIu64 "\n", TOTAL(loads), TOTAL(stores));
    }
    qemu_plugin_outs(line);
#if QEMU_PLUGIN_VERSION >= 2
    qemu_plugin_scoreboard_free(board);
#else
    free(per_vcpu);
#endif
}

QEMU_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc,
                                           char **argv)
{
    for (int i = 0; i < argc; i++) {
        char *eq = strchr(argv[i], '=');
        const char *val = eq ? eq + 1 : "";
        if (eq) {
            *eq = '\0';
        }
        bool ok = eq != NULL;
        if (ok && strcmp(argv[i], "rw") == 0) {
            rw = strcmp(val, "r") == 0   ? QEMU_PLUGIN_MEM_R
                 : strcmp(val, "w") == 0 ? QEMU_PLUGIN_MEM_W
                                         : QEMU_PLUGIN_MEM_RW;
            ok = strcmp(val, "r") == 0 || strcmp(val, "w") == 0 || strcmp(val, "rw") == 0;
        } else if (ok && strcmp(argv[i], "inline") == 0) {
            ok = qemu_plugin_bool_parse(argv[i], val, &use_inline);
        } else if (ok && strcmp(argv[i], "trace") == 0) {
            ok = qemu_plugin_bool_parse(argv[i], val, &trace);
        } else {
            ok = false;
        }
        if (!ok) {
            fprintf(stderr, "mem: bad argument '%s%s%s' (expected inline=on|off, rw=r|w|rw, trace=on|off)\n",
                    argv[i], eq ? "=" : "", val);
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
    board = qemu_plugin_scoreboard_new(sizeof(struct counts));
    loads = qemu_plugin_scoreboard_u64_in_struct(board, struct counts, loads);
    stores = qemu_plugin_scoreboard_u64_in_struct(board, struct counts, stores);
    accesses = qemu_plugin_scoreboard_u64_in_struct(board, struct counts, accesses);
#endif
#if QEMU_PLUGIN_VERSION >= 7
    qemu_plugin_register_vcpu_tb_trans_cb(id, tb_trans, NULL);
#else
    qemu_plugin_register_vcpu_tb_trans_cb(id, tb_trans);
#endif
    qemu_plugin_register_atexit_cb(id, at_exit, NULL);
    return 0;
}
