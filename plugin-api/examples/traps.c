// SPDX-License-Identifier: MIT
// traps: counts the discontinuities each vCPU takes: interrupts, exceptions and host calls.
//
// Arguments:
//   trace=on|off   also log every one: "cpu N interrupt|exception|hostcall from 0x.. to 0x.." (default off)
// Output (qemu_plugin_outs, shown with -d plugin) at exit: "cpu N interrupts: I exceptions: E hostcalls: H"
// per vCPU, then the totals in the same form without "cpu N".
#include <qemu-plugin.h>

#include <stdio.h>

QEMU_PLUGIN_EXPORT int qemu_plugin_version = QEMU_PLUGIN_VERSION;

struct counts {
    uint64_t interrupts, exceptions, hostcalls;
};

static struct qemu_plugin_scoreboard *board;
static bool trace;

static void discon(unsigned int vcpu_index, enum qemu_plugin_discon_type type, uint64_t from_pc,
                   uint64_t to_pc, void *udata)
{
    (void)udata;
    struct counts *c = qemu_plugin_scoreboard_find(board, vcpu_index);
    const char *what = "?";
    switch (type) {
    case QEMU_PLUGIN_DISCON_INTERRUPT:
        c->interrupts++, what = "interrupt";
        break;
    case QEMU_PLUGIN_DISCON_EXCEPTION:
        c->exceptions++, what = "exception";
        break;
    case QEMU_PLUGIN_DISCON_HOSTCALL:
        c->hostcalls++, what = "hostcall";
        break;
    default:
        break;
    }
    if (trace) {
        char line[128];
        snprintf(line, sizeof(line), "cpu %u %s from 0x%" PRIx64 " to 0x%" PRIx64 "\n", vcpu_index, what,
                 from_pc, to_pc);
        qemu_plugin_outs(line);
    }
}

static void at_exit(void *udata)
{
    (void)udata;
    struct counts sum = {0, 0, 0};
    char line[160];
    for (int i = 0; i < qemu_plugin_num_vcpus(); i++) {
        const struct counts *c = qemu_plugin_scoreboard_find(board, i);
        snprintf(line, sizeof(line),
                 "cpu %d interrupts: %" PRIu64 " exceptions: %" PRIu64 " hostcalls: %" PRIu64 "\n", i,
                 c->interrupts, c->exceptions, c->hostcalls);
        qemu_plugin_outs(line);
        sum.interrupts += c->interrupts;
        sum.exceptions += c->exceptions;
        sum.hostcalls += c->hostcalls;
    }
    snprintf(line, sizeof(line), "interrupts: %" PRIu64 " exceptions: %" PRIu64 " hostcalls: %" PRIu64 "\n",
             sum.interrupts, sum.exceptions, sum.hostcalls);
    qemu_plugin_outs(line);
    qemu_plugin_scoreboard_free(board);
}

QEMU_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc,
                                           char **argv)
{
    (void)info;
    for (int i = 0; i < argc; i++) {
        g_auto(GStrv) kv = g_strsplit(argv[i], "=", 2);
        if (!kv[1] || g_strcmp0(kv[0], "trace") != 0 || !qemu_plugin_bool_parse(kv[0], kv[1], &trace)) {
            fprintf(stderr, "traps: bad argument '%s' (expected trace=on|off)\n", argv[i]);
            return -1;
        }
    }
    board = qemu_plugin_scoreboard_new(sizeof(struct counts));
    qemu_plugin_register_vcpu_discon_cb(id, QEMU_PLUGIN_DISCON_ALL, discon, NULL);
    qemu_plugin_register_atexit_cb(id, at_exit, NULL);
    return 0;
}
