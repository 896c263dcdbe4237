// SPDX-License-Identifier: MIT
// The tci engine: keel IR interpreted from a pre-decoded, direct-threaded form; helpers called through
// libffi.
#pragma once

#include <memory>

#include "exec.h"

namespace keel::tci
{

std::unique_ptr<exec::Engine> make_engine();

} // namespace keel::tci
