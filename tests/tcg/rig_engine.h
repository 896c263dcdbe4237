// SPDX-License-Identifier: MIT
// Which engine the fake-CPU rig of tests/ir builds in tcg_test: tcg by default, tci for reference runs.
#pragma once

#include <cstddef>

namespace keel::tcgtest
{

struct RigEngine {
    bool use_tci = false;
    size_t code_cache_size = 0; // 0: the default
    bool optimize = true;       // tcg's opt/ passes
};
// Read when a Rig is constructed.
RigEngine &rig_engine();

// Sets rig_engine() for one scope.
struct UseEngine {
    RigEngine saved;
    explicit UseEngine(bool tci, size_t cache = 0, bool optimize = true) : saved(rig_engine())
    {
        rig_engine().use_tci = tci;
        rig_engine().code_cache_size = cache;
        rig_engine().optimize = optimize;
    }
    ~UseEngine() { rig_engine() = saved; }
};

} // namespace keel::tcgtest
