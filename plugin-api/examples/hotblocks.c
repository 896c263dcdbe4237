// SPDX-License-Identifier: MIT
// hotblocks: finds the most executed translation blocks.
//
// Arguments:
//   limit=N   how many blocks to list (default 20)
// Output (qemu_plugin_outs, shown with -d plugin) at exit: "pc, insns, executions" for the hottest
// blocks, most executed first (ties by address), after a header line with the number of distinct blocks.
#include <qemu-plugin.h>

#include <stdio.h>
#include <stdlib.h>

QEMU_PLUGIN_EXPORT int qemu_plugin_version = QEMU_PLUGIN_VERSION;

struct block {
    uint64_t pc;
    size_t insns;
    struct qemu_plugin_scoreboard *execs; // per-vCPU counts, bumped by an inline op
};

static GMutex lock;
static GHashTable *blocks; // (pc ^ insns) -> struct block; a retranslated block keeps its counts
static unsigned limit = 20;

static void tb_trans(struct qemu_plugin_tb *tb, void *udata)
{
    (void)udata;
    uint64_t pc = qemu_plugin_tb_vaddr(tb);
    size_t n = qemu_plugin_tb_n_insns(tb);
    uint64_t key = pc ^ n;
    g_mutex_lock(&lock);
    struct block *b = g_hash_table_lookup(blocks, &key);
    if (!b) {
        b = g_new0(struct block, 1);
        b->pc = pc;
        b->insns = n;
        b->execs = qemu_plugin_scoreboard_new(sizeof(uint64_t));
        uint64_t *k = g_new(uint64_t, 1);
        *k = key;
        g_hash_table_insert(blocks, k, b);
    }
    g_mutex_unlock(&lock);
    qemu_plugin_register_vcpu_tb_exec_inline_per_vcpu(tb, QEMU_PLUGIN_INLINE_ADD_U64,
                                                      qemu_plugin_scoreboard_u64(b->execs), 1);
}

static uint64_t execs(const struct block *b)
{
    return qemu_plugin_u64_sum(qemu_plugin_scoreboard_u64(b->execs));
}

static gint hotter_first(gconstpointer a, gconstpointer b)
{
    const struct block *x = a, *y = b;
    uint64_t ex = execs(x), ey = execs(y);
    if (ex != ey) {
        return ex > ey ? -1 : 1;
    }
    return x->pc < y->pc ? -1 : x->pc > y->pc;
}

static void free_block(gpointer p)
{
    struct block *b = p;
    qemu_plugin_scoreboard_free(b->execs);
    g_free(b);
}

static void at_exit(void *udata)
{
    (void)udata;
    GList *list = g_list_sort(g_hash_table_get_values(blocks), hotter_first);
    GString *out = g_string_new(NULL);
    g_string_append_printf(out, "collected %u blocks\npc, insns, executions\n", g_hash_table_size(blocks));
    unsigned i = 0;
    for (GList *l = list; l && i < limit; l = l->next, i++) {
        const struct block *b = l->data;
        g_string_append_printf(out, "0x%016" PRIx64 ", %zu, %" PRIu64 "\n", b->pc, b->insns, execs(b));
    }
    qemu_plugin_outs(out->str);
    g_string_free(out, TRUE);
    g_list_free(list);
    g_hash_table_destroy(blocks);
}

QEMU_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc,
                                           char **argv)
{
    (void)info;
    for (int i = 0; i < argc; i++) {
        g_auto(GStrv) kv = g_strsplit(argv[i], "=", 2);
        char *end = NULL;
        if (kv[1] && g_strcmp0(kv[0], "limit") == 0) {
            limit = (unsigned)strtoul(kv[1], &end, 0);
        }
        if (!end || *end || end == kv[1]) {
            fprintf(stderr, "hotblocks: bad argument '%s' (expected limit=N)\n", argv[i]);
            return -1;
        }
    }
    blocks = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, free_block);
    qemu_plugin_register_vcpu_tb_trans_cb(id, tb_trans, NULL);
    qemu_plugin_register_atexit_cb(id, at_exit, NULL);
    return 0;
}
