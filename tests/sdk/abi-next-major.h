/* SPDX-License-Identifier: MIT */
/* Forced in (-include) before a module's sources: the headers then say ABI 2.0, a major this keel does not
 * speak, so the module must be refused. */
#include <keel/common.h>
#undef KEEL_ABI_MAJOR
#define KEEL_ABI_MAJOR 2
#undef KEEL_ABI_MINOR
#define KEEL_ABI_MINOR 0
