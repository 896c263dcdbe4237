// SPDX-License-Identifier: MIT
// cache: models a set-associative L1 instruction cache, L1 data cache and unified L2 (LRU replacement)
// fed with the guest's instruction fetches and data accesses, and reports their miss rates.
//
// Arguments (sizes in bytes, powers of two; QEMU's cache plugin uses the same names):
//   icachesize=N iassoc=N iblksize=N     L1 instruction cache (default 16384, 8, 64)
//   dcachesize=N dassoc=N dblksize=N     L1 data cache (default 16384, 8, 64)
//   l2cachesize=N l2assoc=N l2blksize=N  L2 (default 2097152, 16, 64)
//   l2=on|off                            model the L2, fed by L1 misses (default on)
// One set of caches serves all vCPUs. Addresses are guest physical.
// Output (qemu_plugin_outs, shown with -d plugin) at exit, one line per cache:
//   "L1I accesses: N misses: M miss-rate: R%" (and L1D, L2).
#include <qemu-plugin.h>

#include <stdio.h>
#include <stdlib.h>

QEMU_PLUGIN_EXPORT int qemu_plugin_version = QEMU_PLUGIN_VERSION;

struct cache {
    const char *name;
    uint64_t size, assoc, blksize;
    uint64_t sets;
    uint64_t *tags;  // sets * assoc; 0 = empty, else block number + 1
    uint64_t *stamp; // last use of each way, for LRU
    uint64_t clock, accesses, misses;
};

static struct cache l1i = {.name = "L1I", .size = 16384, .assoc = 8, .blksize = 64},
                    l1d = {.name = "L1D", .size = 16384, .assoc = 8, .blksize = 64},
                    l2 = {.name = "L2", .size = 2097152, .assoc = 16, .blksize = 64};
static bool use_l2 = true;
static GMutex lock;

static bool pow2(uint64_t v)
{
    return v && !(v & (v - 1));
}

static const char *cache_init(struct cache *c)
{
    if (!pow2(c->size) || !pow2(c->assoc) || !pow2(c->blksize) || c->size < c->assoc * c->blksize) {
        return "sizes must be powers of two, with size >= assoc * blksize";
    }
    c->sets = c->size / (c->assoc * c->blksize);
    c->tags = g_new0(uint64_t, c->sets * c->assoc);
    c->stamp = g_new0(uint64_t, c->sets * c->assoc);
    return NULL;
}

// Looks up @addr; on a miss the least recently used way of its set gets the block. True on a hit.
static bool cache_access(struct cache *c, uint64_t addr)
{
    uint64_t block = addr / c->blksize;
    uint64_t *tags = c->tags + (block % c->sets) * c->assoc;
    uint64_t *stamp = c->stamp + (block % c->sets) * c->assoc;
    c->accesses++;
    c->clock++;
    uint64_t victim = 0;
    for (uint64_t w = 0; w < c->assoc; w++) {
        if (tags[w] == block + 1) {
            stamp[w] = c->clock;
            return true;
        }
        if (stamp[w] < stamp[victim]) {
            victim = w;
        }
    }
    c->misses++;
    tags[victim] = block + 1;
    stamp[victim] = c->clock;
    return false;
}

static void cache_fetch(struct cache *l1, uint64_t addr)
{
    g_mutex_lock(&lock);
    if (!cache_access(l1, addr) && use_l2) {
        cache_access(&l2, addr);
    }
    g_mutex_unlock(&lock);
}

static void insn_exec(unsigned int vcpu_index, void *udata)
{
    (void)vcpu_index;
    cache_fetch(&l1i, (uint64_t)(uintptr_t)udata);
}

static void mem_access(unsigned int vcpu_index, qemu_plugin_meminfo_t info, uint64_t vaddr, void *udata)
{
    (void)vcpu_index;
    (void)udata;
    struct qemu_plugin_hwaddr *hw = qemu_plugin_get_hwaddr(info, vaddr);
    if (hw && qemu_plugin_hwaddr_is_io(hw)) {
        return; // device registers are not cached
    }
    cache_fetch(&l1d, hw ? qemu_plugin_hwaddr_phys_addr(hw) : vaddr);
}

static void tb_trans(struct qemu_plugin_tb *tb, void *udata)
{
    (void)udata;
    for (size_t i = 0; i < qemu_plugin_tb_n_insns(tb); i++) {
        struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
        // keel gives the guest physical address here (QEMU: the host address of the bytes).
        qemu_plugin_register_vcpu_insn_exec_cb(insn, insn_exec, QEMU_PLUGIN_CB_NO_REGS,
                                               qemu_plugin_insn_haddr(insn));
        qemu_plugin_register_vcpu_mem_cb(insn, mem_access, QEMU_PLUGIN_CB_NO_REGS, QEMU_PLUGIN_MEM_RW, NULL);
    }
}

static void report(GString *out, const struct cache *c)
{
    double rate = c->accesses ? 100.0 * (double)c->misses / (double)c->accesses : 0.0;
    g_string_append_printf(out, "%s accesses: %" PRIu64 " misses: %" PRIu64 " miss-rate: %.2f%%\n", c->name,
                           c->accesses, c->misses, rate);
}

static void at_exit(void *udata)
{
    (void)udata;
    GString *out = g_string_new(NULL);
    report(out, &l1i);
    report(out, &l1d);
    if (use_l2) {
        report(out, &l2);
    }
    qemu_plugin_outs(out->str);
    g_string_free(out, TRUE);
    struct cache *all[] = {&l1i, &l1d, &l2};
    for (size_t i = 0; i < G_N_ELEMENTS(all); i++) {
        g_free(all[i]->tags);
        g_free(all[i]->stamp);
    }
}

QEMU_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc,
                                           char **argv)
{
    (void)info;
    static const struct {
        const char *name;
        uint64_t *field;
    } params[] = {
        {"icachesize", &l1i.size}, {"iassoc", &l1i.assoc}, {"iblksize", &l1i.blksize},
        {"dcachesize", &l1d.size}, {"dassoc", &l1d.assoc}, {"dblksize", &l1d.blksize},
        {"l2cachesize", &l2.size}, {"l2assoc", &l2.assoc}, {"l2blksize", &l2.blksize},
    };
    for (int i = 0; i < argc; i++) {
        g_auto(GStrv) kv = g_strsplit(argv[i], "=", 2);
        bool ok = false;
        if (kv[1] && g_strcmp0(kv[0], "l2") == 0) {
            ok = qemu_plugin_bool_parse(kv[0], kv[1], &use_l2);
        }
        for (size_t p = 0; kv[1] && p < G_N_ELEMENTS(params); p++) {
            if (g_strcmp0(kv[0], params[p].name) == 0) {
                char *end;
                *params[p].field = strtoull(kv[1], &end, 0);
                ok = *kv[1] && !*end;
            }
        }
        if (!ok) {
            fprintf(stderr, "cache: bad argument '%s'\n", argv[i]);
            return -1;
        }
    }
    struct cache *all[] = {&l1i, &l1d, &l2};
    for (size_t i = 0; i < G_N_ELEMENTS(all); i++) {
        const char *err = cache_init(all[i]);
        if (err) {
            fprintf(stderr, "cache: %s: %s\n", all[i]->name, err);
            for (size_t j = 0; j < i; j++) { // the caches set up before this one
                g_free(all[j]->tags);
                g_free(all[j]->stamp);
            }
            return -1;
        }
    }
    qemu_plugin_register_vcpu_tb_trans_cb(id, tb_trans, NULL);
    qemu_plugin_register_atexit_cb(id, at_exit, NULL);
    return 0;
}
