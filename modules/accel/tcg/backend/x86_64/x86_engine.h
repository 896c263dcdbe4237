// SPDX-License-Identifier: MIT
// The x86-64 back end of tcg: an exec::Engine that compiles IR blocks to host code with xbyak.
#pragma once

#include <cstddef>
#include <memory>

#include "exec.h"

namespace keel::tcg
{

struct EngineOptions {
    // Bytes of code cache; when it is full every block is dropped and translated again.
    size_t code_cache_size = size_t(64) << 20;
    // Run the opt/ passes on each block before code generation.
    bool optimize = true;
};

// nullptr and `err` if the host cannot run generated code (no executable mapping).
std::unique_ptr<exec::Engine> make_x86_engine(const EngineOptions &opt, std::string &err);

// Statistics of an engine made by make_x86_engine (for tests and -d out_asm).
struct EngineStats {
    uint64_t blocks_compiled = 0;
    uint64_t insns_compiled = 0; // guest instructions in those blocks
    uint64_t compile_ns = 0;     // spent optimising and emitting them (not in the translator, not logging)
    uint64_t cache_flushes = 0;
    size_t cache_used = 0; // bytes of the code cache in use now
};
EngineStats engine_stats(exec::Engine &e);

} // namespace keel::tcg
