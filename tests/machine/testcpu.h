/* SPDX-License-Identifier: MIT */
/* The test CPU's state and "instruction set", shared by its module, the test engine and the tests. */
#ifndef KEEL_TEST_CPU_H
#define KEEL_TEST_CPU_H

#include <keel/cpu.h>

/*
 * A test CPU executes 24-byte records {uint64 op, addr, value} at its pc,
 * read through the bus (KeelServices.cpu_mem_read), so programs are plain
 * images the kernel's loader places (tests/machine/mkimage.py writes them).
 */
enum {
    TEST_OP_STORE32 = 1,      /* 32-bit store of value at addr */
    TEST_OP_SPIN = 2,         /* stay at this record forever */
    TEST_OP_STORE64 = 3,      /* 64-bit store of value at addr */
    TEST_OP_ADD32 = 4,        /* mem32[addr] += value */
    TEST_OP_SKIP_IF_ZERO = 5, /* skip the next record if mem32[addr] == 0 */
};
#define TEST_RECORD_SIZE 24u

typedef struct TestCpu {
    KeelCpuCommon common; /* first, as cpu.h requires */
    uint64_t pc;
    uint64_t resetvec;
    uint32_t irq_level[2];     /* mti, msi */
    uint32_t index_at_realize; /* common.cpu_index as realize saw it, plus one (0: never realized) */
    uint32_t resets;
    KeelObject *obj;
} TestCpu;

#endif /* KEEL_TEST_CPU_H */
