// SPDX-License-Identifier: MIT
// Plugins the loader must refuse, one per macro: BAD_NOINSTALL (no qemu_plugin_install), BAD_NOVERSION
// (no qemu_plugin_version), BAD_VERSION=N (declares version N), BAD_INSTALL (install returns 3).
#include <stdint.h>

#define EXPORT __attribute__((visibility("default")))

#ifndef BAD_NOVERSION
#ifdef BAD_VERSION
EXPORT int qemu_plugin_version = BAD_VERSION;
#else
EXPORT int qemu_plugin_version = 1;
#endif
#endif

#ifndef BAD_NOINSTALL
EXPORT int qemu_plugin_install(uint64_t id, const void *info, int argc, char **argv);
EXPORT int qemu_plugin_install(uint64_t id, const void *info, int argc, char **argv)
{
    (void)id, (void)info, (void)argc, (void)argv;
#ifdef BAD_INSTALL
    return 3;
#else
    return 0;
#endif
}
#endif
