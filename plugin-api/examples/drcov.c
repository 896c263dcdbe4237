// SPDX-License-Identifier: MIT
// drcov: records which translated blocks ran, in DynamoRIO's drcov format (version 2), for coverage
// tools such as Lighthouse or bncov.
//
// Arguments:
//   filename=PATH   where to write the log (default drcov.out)
// Output: the file; it has one module, the guest's whole address space, so each block's offset is its
// guest virtual address (truncated to 32 bits, as the format stores it). A block is logged the first
// time it executes.
#include <qemu-plugin.h>

#include <stdio.h>

QEMU_PLUGIN_EXPORT int qemu_plugin_version = QEMU_PLUGIN_VERSION;

struct block {
    uint64_t pc;
    uint16_t size; // bytes of guest code
    bool logged;
};

// One entry of the drcov BB table, as the format lays it out on disk.
struct __attribute__((packed)) drcov_entry {
    uint32_t start;
    uint16_t size;
    uint16_t module;
};

static char *filename;
static GMutex lock;
static GPtrArray *blocks; // every struct block, freed at exit
static GArray *executed;  // struct drcov_entry, in first-execution order

static void tb_exec(unsigned int vcpu_index, void *udata)
{
    (void)vcpu_index;
    struct block *b = udata;
    g_mutex_lock(&lock);
    if (!b->logged) {
        b->logged = true;
        struct drcov_entry e = {(uint32_t)b->pc, b->size, 0};
        g_array_append_val(executed, e);
    }
    g_mutex_unlock(&lock);
}

static void tb_trans(struct qemu_plugin_tb *tb, void *udata)
{
    (void)udata;
    size_t n = qemu_plugin_tb_n_insns(tb);
    struct block *b = g_new0(struct block, 1);
    b->pc = qemu_plugin_tb_vaddr(tb);
    uint64_t size = 0;
    for (size_t i = 0; i < n; i++) {
        size += qemu_plugin_insn_size(qemu_plugin_tb_get_insn(tb, i));
    }
    b->size = (uint16_t)size;
    g_mutex_lock(&lock);
    g_ptr_array_add(blocks, b);
    g_mutex_unlock(&lock);
    qemu_plugin_register_vcpu_tb_exec_cb(tb, tb_exec, QEMU_PLUGIN_CB_NO_REGS, b);
}

static void at_exit(void *udata)
{
    (void)udata;
    FILE *f = fopen(filename, "wb");
    if (!f) {
        fprintf(stderr, "drcov: cannot write %s\n", filename);
    } else {
        fprintf(f, "DRCOV VERSION: 2\nDRCOV FLAVOR: drcov\n");
        fprintf(f, "Module Table: version 2, count 1\nColumns: id, base, end, entry, path\n");
        fprintf(f, "  0, 0x0000000000000000, 0xffffffffffffffff, 0x0000000000000000, guest\n");
        fprintf(f, "BB Table: %u bbs\n", executed->len);
        fwrite(executed->data, sizeof(struct drcov_entry), executed->len, f);
        fclose(f);
    }
    g_array_free(executed, TRUE);
    g_ptr_array_free(blocks, TRUE);
    g_free(filename);
}

QEMU_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc,
                                           char **argv)
{
    (void)info;
    for (int i = 0; i < argc; i++) {
        g_auto(GStrv) kv = g_strsplit(argv[i], "=", 2);
        if (!kv[1] || !*kv[1] || g_strcmp0(kv[0], "filename") != 0) {
            fprintf(stderr, "drcov: bad argument '%s' (expected filename=PATH)\n", argv[i]);
            g_free(filename);
            return -1;
        }
        g_free(filename);
        filename = g_strdup(kv[1]);
    }
    if (!filename) {
        filename = g_strdup("drcov.out");
    }
    blocks = g_ptr_array_new_with_free_func(g_free);
    executed = g_array_new(FALSE, FALSE, sizeof(struct drcov_entry));
    qemu_plugin_register_vcpu_tb_trans_cb(id, tb_trans, NULL);
    qemu_plugin_register_atexit_cb(id, at_exit, NULL);
    return 0;
}
