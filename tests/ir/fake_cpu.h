// SPDX-License-Identifier: MIT
// A tiny fake CPU for the execution-core tests: a few globals, a translate hook per pc, a 1:1 tlb_fill.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <vector>

#include <keel/cpu.h>

#include "exec.h"
#include "machine.h"

namespace keel::irtest
{

enum Global : unsigned { X0, X1, X2, X3, W0, W1, W2, PC, F0, D0, N_GLOBALS };

struct FakeEnv {
    KeelCpuCommon common;
    uint64_t x[4];
    uint32_t w[3];
    uint32_t f0; // F32 bits
    uint64_t pc;
    uint64_t d0; // F64 bits
    // What the engine did to the CPU.
    int faults = 0;
    KeelMemFault fault_kind = KEEL_FAULT_BUS;
    KeelAccess fault_access = KEEL_ACCESS_READ;
    uint64_t fault_vaddr = 0;
    int exceptions = 0;
    uint64_t exception_pc = 0;
    int interrupts = 0;
    int tlb_fills = 0;
    uint64_t unmapped_page = ~uint64_t(0); // tlb_fill fails for this virtual page
    unsigned page_bits = 12;
    volatile int work = 0; // has_work
};

// Builds the IR of the block at one pc.
using BlockFn = std::function<void(KeelIrBuilder *, const KeelIrBuilderOps *, uint64_t pc)>;

// The machine, the CPU object and the engine; one per test.
struct Rig {
    std::unique_ptr<Machine> machine;
    KeelObject obj;
    FakeEnv env{};
    KeelCpuHandle handle{};
    std::unique_ptr<exec::Core> core;
    std::map<uint64_t, BlockFn> blocks;
    std::map<uint64_t, int> translations; // pc -> times translated
    unsigned max_insns = 0;               // of the translation in progress (blocks may honour it)
    std::function<void(FakeEnv &)> on_exception;
    std::function<void(FakeEnv &)> on_interrupt;

    Rig();
    ~Rig();
    // Run from `pc` until a block reaches kStopPc (or something stops the engine); run()'s result.
    int run_from(uint64_t pc);
    uint8_t *ram(uint64_t paddr);
};

constexpr uint64_t kRam = 0x80000000;
constexpr uint64_t kData = 0x80080000;
constexpr uint64_t kStopPc = 0x800ff000; // its block stops the engine
constexpr uint64_t kMmio = 0x10000000;

extern const KeelCpuOps kFakeCpuOps;
Rig *current_rig();

} // namespace keel::irtest
