// SPDX-License-Identifier: MIT
// A guest whose instruction count is known exactly: LOOPS iterations of a two-instruction loop, then
// exit through the sifive-test device (riscv-virt, -bios none) and stop in wfi.
//
// Executed instructions, counting from reset: the board's 6-instruction reset vector at 0x1000 (auipc,
// addi, csrr mhartid, ld, ld, jr), then li (1, LOOPS < 2048), 2 * LOOPS for the loop, lui + lui + addiw
// and the sw that ends the run: 2 * LOOPS + 11. QEMU 7.2's sifive-test ends the process inside that
// store, so the wfi never runs (it would park the hart, no interrupt being enabled, if it did).
// Memory accesses: the reset vector's two 8-byte loads and the 4-byte store to sifive-test (MMIO).
    .section .text.init, "ax"
    .globl _start
_start:
    li t0, LOOPS
1:  addi t0, t0, -1
    bnez t0, 1b
    li t1, 0x100000       // sifive-test
    li t2, 0x5555         // "pass": exit status 0
    sw t2, 0(t1)
    wfi
    j .
