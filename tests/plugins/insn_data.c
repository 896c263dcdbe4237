// SPDX-License-Identifier: MIT
// Calls qemu_plugin_insn_data in its copying form (v3+): must compile from v3 on and fail in v1 and v2,
// where it returns a pointer and takes one argument.
#include <qemu-plugin.h>

QEMU_PLUGIN_EXPORT int qemu_plugin_version = QEMU_PLUGIN_VERSION;

size_t first_bytes(const struct qemu_plugin_insn *insn, uint32_t *out);
size_t first_bytes(const struct qemu_plugin_insn *insn, uint32_t *out)
{
    return qemu_plugin_insn_data(insn, out, sizeof(*out));
}

QEMU_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc,
                                           char **argv)
{
    (void)id, (void)info, (void)argc, (void)argv;
    return 0;
}
