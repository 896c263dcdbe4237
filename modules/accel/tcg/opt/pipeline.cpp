// SPDX-License-Identifier: MIT
// The optimisation pipeline: the passes in order, the verifier last.
#include "opt.h"

namespace keel::tcg::opt
{

bool optimize(exec::IrBlock &b)
{
    fold_constants(b);
    merge_counters(b);
    merge_global_adds(b);
    remove_dead_stores(b);
    remove_dead_code(b);
    return exec::verify(b);
}

} // namespace keel::tcg::opt
