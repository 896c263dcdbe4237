// SPDX-License-Identifier: MIT
// The engine factory fake_cpu.cpp calls in tcg_test (its tci::make_engine is renamed make_rig_engine).
#include "rig_engine.h"

#include <catch2/catch.hpp>

#include "tcg.h"
#include "tci.h"

namespace keel::tcgtest
{

RigEngine &rig_engine()
{
    static RigEngine e;
    return e;
}

} // namespace keel::tcgtest

namespace keel::tci
{

std::unique_ptr<exec::Engine> make_rig_engine()
{
    const tcgtest::RigEngine &want = tcgtest::rig_engine();
    if (want.use_tci) return make_engine();
    tcg::EngineOptions opt;
    if (want.code_cache_size) opt.code_cache_size = want.code_cache_size;
    opt.optimize = want.optimize;
    std::string err;
    auto e = tcg::make_engine(err, opt);
    INFO(err);
    REQUIRE(e);
    return e;
}

} // namespace keel::tci
