// SPDX-License-Identifier: MIT
// Helpers shared by the machine tests: the registry over the test and built modules, manifests in temp files.
#pragma once

#include <filesystem>
#include <fstream>
#include <string>
#include <unistd.h>

#include "kernel.h"
#include "machine.h"

namespace keel::test
{

// The kernel's registry, searching the test modules first, then the built ones (sifive-test).
inline Registry &test_registry()
{
    static bool ready = false;
    Registry &reg = kernel().registry();
    if (!ready) {
        reg.set_search_path({TEST_MODULE_DIR, KEEL_MODULE_DIR});
        reg.refresh();
        ready = true;
    }
    return reg;
}

inline std::unique_ptr<Machine> build_machine(const std::string &manifest, ManifestOverrides ov = {},
                                              SymbolTable symbols = {})
{
    Registry &reg = test_registry();
    MachineSpec spec = load_manifest(manifest, {}, ov, reg);
    auto m = std::make_unique<Machine>(reg, std::move(spec), nullptr);
    m->set_symbols(std::move(symbols));
    m->build();
    return m;
}

// A manifest written by the test into a temporary file.
struct TempManifest {
    std::string path;
    explicit TempManifest(const std::string &text)
    {
        char tmpl[] = "/tmp/keel-machine-XXXXXX.yaml";
        int fd = ::mkstemps(tmpl, 5);
        ::close(fd);
        path = tmpl;
        std::ofstream(path) << text;
    }
    ~TempManifest() { std::filesystem::remove(path); }
};

} // namespace keel::test
