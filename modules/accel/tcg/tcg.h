// SPDX-License-Identifier: MIT
// The tcg accelerator: keel IR compiled to host code; make_engine() gives the engine for the shared core.
#pragma once

#include <memory>
#include <string>

#include "backend/x86_64/x86_engine.h"
#include "exec.h"

namespace keel::tcg
{

// The JIT engine for this host, or nullptr and `err`.
inline std::unique_ptr<exec::Engine> make_engine(std::string &err, const EngineOptions &opt = {})
{
    return make_x86_engine(opt, err);
}

} // namespace keel::tcg
