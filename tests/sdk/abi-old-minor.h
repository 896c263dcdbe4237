/* SPDX-License-Identifier: MIT */
/* Forced in (-include) before a module's sources: the headers then say ABI 1.0, as a keel of that time did,
 * so the module is what a vendor built against keel's first release. */
#include <keel/common.h>
#undef KEEL_ABI_MINOR
#define KEEL_ABI_MINOR 0
