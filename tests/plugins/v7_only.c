// SPDX-License-Identifier: MIT
// Uses the version-7 callback signatures (no id, userdata everywhere): compiles in v7 mode, and must not
// compile in v1 mode, which proves the header really declares a different API per version.
#include <qemu-plugin.h>

QEMU_PLUGIN_EXPORT int qemu_plugin_version = QEMU_PLUGIN_VERSION;

static void tb_trans(struct qemu_plugin_tb *tb, void *udata)
{
    (void)tb;
    (void)udata;
}

QEMU_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc,
                                           char **argv)
{
    (void)info, (void)argc, (void)argv;
    qemu_plugin_register_vcpu_tb_trans_cb(id, tb_trans, NULL);
    return 0;
}
