// SPDX-License-Identifier: MIT
// Random instruction words, run in M mode or (FUZZ_U) in U mode: whatever the guest does, keel must keep
// running without crashing until it is stopped (ctest sends SIGINT), or end through a device the random
// code happened to drive. The words come from a linear congruential generator evaluated by the
// assembler, so the program is the same on every build. The trap handler skips the faulting
// instruction (mepc += 4) and returns to the mode the trap came from.
#include "rt.h"

#ifndef SEED
#define SEED 1
#endif

    .text
    .globl main
main:
    la t0, skip
    csrw mtvec, t0
    li t0, 0x6000 // mstatus.FS = dirty: FP instructions run
    csrs mstatus, t0
#ifdef FUZZ_U
    // The runtime opened PMP to everything; enter U mode at the words.
    li t0, 0x1800 // MPP = U
    csrc mstatus, t0
    la t0, words
    csrw mepc, t0
    mret
#else
    j words
#endif

    .align 2
skip:
    csrr t6, mepc
    addi t6, t6, 4
    csrw mepc, t6
    mret

    .align 2
words:
    .set lcg, SEED
    .rept 6000
    .set lcg, (lcg * 1103515245 + 12345) & 0xffffffff
    .word lcg
    .endr
1:  j 1b
