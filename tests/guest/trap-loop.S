// SPDX-License-Identifier: MIT
// A guest stuck in a trap loop: mtvec points at an illegal instruction, so every trap traps again, in M,
// forever. Never exits; the emulator must keep running and stay stoppable (ctest sends SIGINT).
#include "rt.h"

    .text
    .globl main
main:
    la t0, trap_forever
    csrw mtvec, t0
    .word 0 // defined illegal instruction: the first trap
1:  j 1b

    .align 2
trap_forever:
    .word 0
