// SPDX-License-Identifier: MIT
// hotpages: counts memory accesses per guest physical page, to show where a program's data lives.
//
// Arguments:
//   pagesize=N              page size in bytes, a power of two (default 4096)
//   sortby=reads|writes|address   order of the listing (default: reads + writes, most first)
//   limit=N                 how many pages to list (default 20)
// Output (qemu_plugin_outs, shown with -d plugin) at exit: "addr, reads, writes" per page.
#include <qemu-plugin.h>

#include <stdio.h>
#include <stdlib.h>

QEMU_PLUGIN_EXPORT int qemu_plugin_version = QEMU_PLUGIN_VERSION;

struct page {
    uint64_t addr;
    uint64_t reads, writes;
};

enum sort { SORT_TOTAL, SORT_READS, SORT_WRITES, SORT_ADDRESS };

static GMutex lock;
static GHashTable *pages; // page address -> struct page
static uint64_t page_mask = ~(uint64_t)4095;
static enum sort sort_by = SORT_TOTAL;
static unsigned limit = 20;

static void mem_access(unsigned int vcpu_index, qemu_plugin_meminfo_t info, uint64_t vaddr, void *udata)
{
    (void)vcpu_index;
    (void)udata;
    struct qemu_plugin_hwaddr *hw = qemu_plugin_get_hwaddr(info, vaddr);
    uint64_t addr = (hw ? qemu_plugin_hwaddr_phys_addr(hw) : vaddr) & page_mask;
    g_mutex_lock(&lock);
    struct page *p = g_hash_table_lookup(pages, &addr);
    if (!p) {
        p = g_new0(struct page, 1);
        p->addr = addr;
        g_hash_table_insert(pages, &p->addr, p);
    }
    if (qemu_plugin_mem_is_store(info)) {
        p->writes++;
    } else {
        p->reads++;
    }
    g_mutex_unlock(&lock);
}

static void tb_trans(struct qemu_plugin_tb *tb, void *udata)
{
    (void)udata;
    for (size_t i = 0; i < qemu_plugin_tb_n_insns(tb); i++) {
        qemu_plugin_register_vcpu_mem_cb(qemu_plugin_tb_get_insn(tb, i), mem_access, QEMU_PLUGIN_CB_NO_REGS,
                                         QEMU_PLUGIN_MEM_RW, NULL);
    }
}

static gint compare(gconstpointer a, gconstpointer b)
{
    const struct page *x = a, *y = b;
    uint64_t kx = 0, ky = 0;
    switch (sort_by) {
    case SORT_TOTAL:
        kx = x->reads + x->writes, ky = y->reads + y->writes;
        break;
    case SORT_READS:
        kx = x->reads, ky = y->reads;
        break;
    case SORT_WRITES:
        kx = x->writes, ky = y->writes;
        break;
    case SORT_ADDRESS:
        break;
    }
    if (kx != ky) {
        return kx > ky ? -1 : 1; // most first
    }
    return x->addr < y->addr ? -1 : x->addr > y->addr;
}

static void at_exit(void *udata)
{
    (void)udata;
    GList *list = g_list_sort(g_hash_table_get_values(pages), compare);
    GString *out = g_string_new("addr, reads, writes\n");
    unsigned i = 0;
    for (GList *l = list; l && i < limit; l = l->next, i++) {
        const struct page *p = l->data;
        g_string_append_printf(out, "0x%016" PRIx64 ", %" PRIu64 ", %" PRIu64 "\n", p->addr, p->reads,
                               p->writes);
    }
    qemu_plugin_outs(out->str);
    g_string_free(out, TRUE);
    g_list_free(list);
    g_hash_table_destroy(pages);
}

QEMU_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc,
                                           char **argv)
{
    (void)info;
    for (int i = 0; i < argc; i++) {
        g_auto(GStrv) kv = g_strsplit(argv[i], "=", 2);
        bool ok = kv[1] != NULL;
        char *end = NULL;
        if (ok && g_strcmp0(kv[0], "pagesize") == 0) {
            unsigned long size = strtoul(kv[1], &end, 0);
            ok = *kv[1] && !*end && size && !(size & (size - 1));
            page_mask = ~(uint64_t)(size - 1);
        } else if (ok && g_strcmp0(kv[0], "limit") == 0) {
            limit = (unsigned)strtoul(kv[1], &end, 0);
            ok = *kv[1] && !*end;
        } else if (ok && g_strcmp0(kv[0], "sortby") == 0) {
            if (g_strcmp0(kv[1], "reads") == 0) {
                sort_by = SORT_READS;
            } else if (g_strcmp0(kv[1], "writes") == 0) {
                sort_by = SORT_WRITES;
            } else if (g_strcmp0(kv[1], "address") == 0) {
                sort_by = SORT_ADDRESS;
            } else {
                ok = false;
            }
        } else {
            ok = false;
        }
        if (!ok) {
            fprintf(stderr,
                    "hotpages: bad argument '%s' (expected pagesize=POW2, sortby=reads|writes|address, "
                    "limit=N)\n",
                    argv[i]);
            return -1;
        }
    }
    pages = g_hash_table_new_full(g_int64_hash, g_int64_equal, NULL, g_free);
    qemu_plugin_register_vcpu_tb_trans_cb(id, tb_trans, NULL);
    qemu_plugin_register_atexit_cb(id, at_exit, NULL);
    return 0;
}
