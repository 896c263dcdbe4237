// SPDX-License-Identifier: MIT
// Test fixture for the hart's privileged side: an RvCpu in M mode, a recording engine, and the fake kernel's
// RAM.
#pragma once

#include "fake_services.h"
#include "priv.h"

#include <string>
#include <vector>

namespace hart_test
{

using namespace keel::rv;

// What the privileged side asked of the engine and the kernel.
struct Calls {
    unsigned tlb_flush = 0;
    std::vector<uint64_t> tlb_flush_page;
    unsigned tb_flush = 0;
    unsigned kicks = 0;
};
extern Calls calls;

constexpr uint64_t RAM_BASE = 0x80000000;
constexpr size_t RAM_SIZE = 4 << 20;

struct Hart {
    keel::test::FakeKernel k{RAM_BASE, RAM_SIZE};
    KeelServices svc; // the fake kernel's table with cpu_kick recorded
    RvCpu cpu{};

    Hart();
    ~Hart();
    Hart(const Hart &) = delete;
    Hart &operator=(const Hart &) = delete;

    // Executes a Zicsr instruction: funct3 1-3 (register forms, src = x[rs1]) or 5-7 (uimm = rs1).
    uint64_t csr(unsigned funct3, unsigned rd, unsigned csr, unsigned rs1, uint64_t src);
    uint64_t csrr(unsigned num) { return csr(2, 1, num, 0, 0); }
    void csrw(unsigned num, uint64_t v) { csr(1, 0, num, 5, v); }
    // Whether the last operation raised `cause`; clears the pending exception.
    bool raised(uint64_t cause);
    bool raised_illegal(uint32_t tval) { return cpu.exc_tval == tval && raised(EXC_ILLEGAL_INSN); }
    bool clean() const { return cpu.common.exception == 0; }

    // Physical memory.
    void put64(uint64_t paddr, uint64_t v);
    uint64_t get64(uint64_t paddr);

    // PMP entry 15 as a NAPOT region over everything with RWX, so S and U may access memory.
    void pmp_allow_all();
};

uint32_t csr_insn(unsigned funct3, unsigned rd, unsigned csr, unsigned rs1);

} // namespace hart_test
