// SPDX-License-Identifier: MIT
// The smallest plugin: includes the header the way QEMU plugins do, for the header compile tests (every
// API version, as C and as C++, -Wall -Wextra -Werror -pedantic).
#include <qemu-plugin.h>

QEMU_PLUGIN_EXPORT int qemu_plugin_version = QEMU_PLUGIN_VERSION;

#if QEMU_PLUGIN_VERSION != KEEL_QEMU_PLUGIN_API_VERSION
#error "QEMU_PLUGIN_VERSION must be the selected API version"
#endif

QEMU_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc,
                                           char **argv)
{
    (void)id, (void)info, (void)argc, (void)argv;
    return 0;
}
