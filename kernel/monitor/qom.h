// SPDX-License-Identifier: MIT
// The QOM view of the machine for QMP's qom-list, qom-get and qom-set: paths, property types and values.
#pragma once

#include <string>
#include <vector>

#include "json.h"

namespace keel::qom
{

// A QMP error: its class ("GenericError", "DeviceNotFound") and QEMU's description.
struct Failure {
    std::string cls;
    std::string desc;
};

struct PropInfo {
    std::string name;
    std::string type; // "string", "bool", "uint64", "child<ns16550a>", "link<riscv64>"
};

// Paths: "/", "/machine", "/machine/NAME" (KeelObject::path), or an object's bare name (a partial path, as
// QEMU resolves one that is unambiguous). All three take the big lock themselves: call them without it.
bool list(const std::string &path, std::vector<PropInfo> &out, Failure &err);
bool get(const std::string &path, const std::string &prop, json::Value &out, Failure &err);
// Only properties marked KEEL_PROPF_SETTABLE; the device's property_changed may refuse (the old value is
// then restored).
bool set(const std::string &path, const std::string &prop, const json::Value &value, Failure &err);

} // namespace keel::qom
