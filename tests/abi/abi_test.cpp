// SPDX-License-Identifier: MIT
// The loader against real good and broken modules: exact refusal messages, registry untouched, index
// behaviour.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <unistd.h>

#include "kernel.h"
#include "registry.h"

using namespace keel;
namespace fs = std::filesystem;

namespace
{

std::string mod(const std::string &name)
{
    return std::string(ABI_MODULE_DIR) + "/libkeel-device-" + name + ".so";
}

struct Snapshot {
    std::vector<std::string> types;
    size_t modules;
    explicit Snapshot(const Registry &r) : types(r.type_names()), modules(r.modules().size()) {}
    bool operator==(const Snapshot &o) const { return types == o.types && modules == o.modules; }
};

// A registry that already holds the good module, so refusals must leave it exactly so.
std::string refuse(const std::string &name)
{
    Registry reg(kernel().services());
    std::string err;
    REQUIRE(reg.load_module(mod("abi-good"), err));
    Snapshot before(reg);
    bool ok = reg.load_module(mod(name), err);
    CHECK_FALSE(ok);
    CHECK(Snapshot(reg) == before);
    return err;
}

struct TempDir {
    fs::path path;
    TempDir()
    {
        char tmpl[] = "/tmp/keel-abi-XXXXXX";
        path = ::mkdtemp(tmpl);
    }
    ~TempDir() { fs::remove_all(path); }
};

} // namespace

TEST_CASE("a good module loads and registers its type with its schema", "[abi]")
{
    Registry reg(kernel().services());
    std::string err;
    REQUIRE(reg.load_module(mod("abi-good"), err));
    const TypeRecord *t = reg.find_record("abi-good");
    REQUIRE(t);
    CHECK(t->info != nullptr);
    CHECK(t->module_name == "abi");
    CHECK(t->module_version == "1.2.3");
    REQUIRE(t->props.size() == 2);
    CHECK(t->props[0].name == "value");
    CHECK(t->props[0].default_value == "7");
    CHECK(t->props[1].type == KEEL_PROP_BOOL);
    REQUIRE(reg.modules().size() == 1);
    CHECK(reg.modules()[0]->ok);
    CHECK(reg.modules()[0]->abi_major == KEEL_ABI_MAJOR);
}

TEST_CASE("refusals name the file and both versions, and change nothing", "[abi]")
{
    std::string v = std::to_string(KEEL_ABI_MAJOR) + "." + std::to_string(KEEL_ABI_MINOR);
    std::string major_next = std::to_string(KEEL_ABI_MAJOR + 1);
    CHECK(refuse("abi-wrong-major") == mod("abi-wrong-major") + ": module built for keel ABI " + major_next +
                                           ".0, but this keel provides ABI " + v +
                                           "; rebuild the module against keel ABI " +
                                           std::to_string(KEEL_ABI_MAJOR) + ".x");
    std::string newer = std::to_string(KEEL_ABI_MAJOR) + "." + std::to_string(KEEL_ABI_MINOR + 1);
    CHECK(refuse("abi-newer-minor") == mod("abi-newer-minor") + ": module needs keel ABI " + newer +
                                           ", newer than this keel's ABI " + v +
                                           "; upgrade keel or rebuild the module against ABI " + v);
    CHECK(refuse("abi-no-symbol") ==
          mod("abi-no-symbol") + ": not a keel module: it does not export 'keel_module_info'");
    CHECK(refuse("abi-null-info") == mod("abi-null-info") + ": keel_module_info() returned NULL");
    CHECK(refuse("abi-null-init") == mod("abi-null-init") + ": module 'abi' has no init function");
    CHECK(refuse("abi-small-struct") == mod("abi-small-struct") +
                                            ": module descriptor is 16 bytes, smaller than the " +
                                            std::to_string(offsetof(KeelModuleInfo, reserved)) +
                                            " bytes of ABI " + std::to_string(KEEL_ABI_MAJOR) +
                                            ".0; the module is corrupt or was built against a broken header");
    CHECK(refuse("abi-bad-version") ==
          mod("abi-bad-version") +
              ": module 'abi' has an invalid version 'one' (expected MAJOR.MINOR.PATCH)");
    CHECK(refuse("abi-init-fails") ==
          mod("abi-init-fails") + ": module 'abi' failed to initialise: the hardware it needs is missing");
    CHECK(refuse("abi-bad-default") ==
          mod("abi-bad-default") +
              ": module 'abi' failed to initialise: type 'abi-bad-default' property 'value': bad "
              "default: value 2000 is out of range 1..1023 for property 'value'");
}

TEST_CASE("a second module registering a taken type name is refused whole", "[abi]")
{
    Registry reg(kernel().services());
    std::string err;
    REQUIRE(reg.load_module(mod("abi-dup-a"), err));
    Snapshot before(reg);
    CHECK_FALSE(reg.load_module(mod("abi-dup-b"), err));
    CHECK(err == mod("abi-dup-b") +
                     ": module 'abi' failed to initialise: type 'abi-shared' is already provided by " +
                     mod("abi-dup-a") + " (module abi 1.2.3)");
    CHECK(Snapshot(reg) == before);
    CHECK(reg.find_record("abi-shared")->module->file == mod("abi-dup-a"));
}

TEST_CASE("a file that is not a shared object is refused with dlopen's reason", "[abi]")
{
    TempDir d;
    fs::path f = d.path / "libkeel-device-garbage.so";
    std::ofstream(f) << "this is not an ELF file\n";
    Registry reg(kernel().services());
    std::string err;
    CHECK_FALSE(reg.load_module(f.string(), err));
    CHECK(err.rfind(f.string() + ": cannot load module: ", 0) == 0);
    CHECK(reg.modules().empty());
    CHECK(reg.type_names().empty());
}

TEST_CASE("the module index lists types without loading modules and notices changes", "[abi][index]")
{
    TempDir d;
    fs::create_directory(d.path / "device");
    fs::copy_file(mod("abi-good"), d.path / "device" / "libkeel-device-abi-good.so");
    fs::copy_file(mod("abi-wrong-major"), d.path / "libkeel-device-abi-wrong-major.so");
    fs::path index = d.path / "modules.index";

    {
        Registry reg(kernel().services());
        reg.set_search_path({d.path.string()});
        reg.refresh();
        REQUIRE(fs::exists(index));
        REQUIRE(reg.modules().size() == 2);
        CHECK(reg.find_type("abi-good"));
    }
    auto written = fs::last_write_time(index);

    // A fresh registry answers from the index: nothing is loaded, nothing rewritten.
    Registry reg(kernel().services());
    reg.set_search_path({d.path.string()});
    reg.refresh();
    CHECK(fs::last_write_time(index) == written);
    const TypeRecord *t = reg.find_record("abi-good");
    REQUIRE(t);
    CHECK(t->info == nullptr);
    CHECK(t->props.size() == 2);
    CHECK(t->props[0].default_value == "7");
    bool refused_seen = false;
    for (const auto &m : reg.modules()) {
        CHECK(m->handle == nullptr);
        if (!m->ok) {
            refused_seen = true;
            CHECK(m->error.find("module built for keel ABI") != std::string::npos);
        }
    }
    CHECK(refused_seen);

    // Asking for the type loads exactly its module.
    const TypeRecord &loaded = reg.require_type("abi-good");
    CHECK(loaded.info != nullptr);
    CHECK(loaded.module->handle != nullptr);

    // A module dropped in later is found without --rebuild-index.
    fs::copy_file(mod("abi-dup-a"), d.path / "device" / "libkeel-device-abi-dup-a.so");
    Registry reg2(kernel().services());
    reg2.set_search_path({d.path.string()});
    reg2.refresh();
    CHECK(reg2.find_type("abi-shared"));
    CHECK(fs::last_write_time(index) != written);

    // Unknown types get a suggestion.
    CHECK_THROWS_WITH(reg2.require_type("abi-god"), "unknown type 'abi-god' (did you mean 'abi-good'?)");
}

TEST_CASE("the first module on the search path wins a type, later ones are refused", "[abi][index]")
{
    TempDir a, b;
    fs::copy_file(mod("abi-dup-a"), a.path / "libkeel-device-abi-dup-a.so");
    fs::copy_file(mod("abi-dup-b"), b.path / "libkeel-device-abi-dup-b.so");
    for (int pass = 0; pass < 2; ++pass) { // the second pass reads both indexes
        Registry reg(kernel().services());
        reg.set_search_path({a.path.string(), b.path.string()});
        reg.refresh();
        const TypeRecord *t = reg.find_record("abi-shared");
        REQUIRE(t);
        CHECK(t->module->file == fs::canonical(a.path / "libkeel-device-abi-dup-a.so").string());
        REQUIRE(reg.modules().size() == 2);
        CHECK_FALSE(reg.modules()[1]->ok);
        CHECK(reg.modules()[1]->error.find("type 'abi-shared' is already provided by") != std::string::npos);
    }
}

namespace
{

std::string accel_mod(const std::string &name)
{
    return std::string(ABI_MODULE_DIR) + "/libkeel-accel-" + name + ".so";
}

} // namespace

TEST_CASE("an accelerator module registers its accelerator", "[abi][accel]")
{
    Registry reg(kernel().services());
    std::string err;
    REQUIRE(reg.load_module(accel_mod("abi-accel-good"), err));
    const AccelRecord *a = reg.find_accel("abi-accel");
    REQUIRE(a);
    REQUIRE(a->info != nullptr);
    CHECK(a->description == "ABI test accelerator");
    CHECK(a->module->kind == "accel");
    CHECK(a->module->accels == std::vector<std::string>{"abi-accel"});
    CHECK(reg.accel_names() == std::vector<std::string>{"abi-accel"});
    CHECK(&reg.require_accel("abi-accel") == a);
    CHECK_THROWS_WITH(reg.require_accel("abi-acel"),
                      "unknown accelerator 'abi-acel' (did you mean 'abi-accel'?) (available: abi-accel)");
}

TEST_CASE("broken accelerator descriptors are refused with a clear message", "[abi][accel]")
{
    auto refuse_accel = [](const std::string &name) {
        Registry reg(kernel().services());
        std::string err;
        CHECK_FALSE(reg.load_module(accel_mod(name), err));
        CHECK(reg.accel_names().empty());
        CHECK(reg.modules().empty());
        return err;
    };
    CHECK(refuse_accel("abi-accel-null-ops") ==
          accel_mod("abi-accel-null-ops") +
              ": module 'abi' failed to initialise: accelerator 'abi-accel' has no ops table");
    CHECK(refuse_accel("abi-accel-no-run") ==
          accel_mod("abi-accel-no-run") +
              ": module 'abi' failed to initialise: accelerator 'abi-accel' lacks "
              "run() in its ops table (create, run and stop are required)");
    CHECK(refuse_accel("abi-accel-dup") ==
          accel_mod("abi-accel-dup") + ": module 'abi' failed to initialise: accelerator 'abi-accel' is "
                                       "registered twice");
    Registry none(kernel().services());
    CHECK_THROWS_WITH(none.require_accel("tci"),
                      "unknown accelerator 'tci' (no accelerator module is installed)");
}

std::string board_mod(const std::string &name)
{
    return std::string(ABI_MODULE_DIR) + "/libkeel-machine-" + name + ".so";
}

TEST_CASE("a board module registers its board", "[abi][board]")
{
    Registry reg(kernel().services());
    std::string err;
    REQUIRE(reg.load_module(board_mod("abi-board-good"), err));
    const BoardRecord *b = reg.find_board("abi-board");
    REQUIRE(b);
    REQUIRE(b->info != nullptr);
    CHECK(std::string(b->info->arch) == "riscv");
    CHECK(b->description == "ABI test board");
    CHECK(b->module->kind == "machine");
    CHECK(b->module->boards == std::vector<std::string>{"abi-board"});
    CHECK(&reg.require_board("abi-board") == b);
    CHECK_THROWS_WITH(reg.require_board("abi-bord"),
                      "unknown board 'abi-bord' (did you mean 'abi-board'?) (available: abi-board)");
}

TEST_CASE("broken board descriptors are refused with a clear message", "[abi][board]")
{
    auto refuse = [](const std::string &name) {
        Registry reg(kernel().services());
        std::string err;
        CHECK_FALSE(reg.load_module(board_mod(name), err));
        CHECK(reg.board_names().empty());
        return err;
    };
    CHECK(refuse("abi-board-no-arch") ==
          board_mod("abi-board-no-arch") + ": module 'abi' failed to initialise: board 'abi-board' names no "
                                           "CPU architecture");
    CHECK(refuse("abi-board-no-boot") ==
          board_mod("abi-board-no-boot") + ": module 'abi' failed to initialise: board 'abi-board' lacks an "
                                           "ops table with create() and boot()");
    Registry none(kernel().services());
    CHECK_THROWS_WITH(none.require_board("riscv-generic"),
                      "unknown board 'riscv-generic' (no board module is installed)");
}

TEST_CASE("the module index lists accelerators, asking for one loads its module", "[abi][accel][index]")
{
    TempDir d;
    fs::copy_file(accel_mod("abi-accel-good"), d.path / "libkeel-accel-abi-accel-good.so");
    {
        Registry reg(kernel().services());
        reg.set_search_path({d.path.string()});
        reg.refresh();
    }
    Registry reg(kernel().services());
    reg.set_search_path({d.path.string()});
    reg.refresh();
    const AccelRecord *a = reg.find_accel("abi-accel");
    REQUIRE(a);
    CHECK(a->info == nullptr); // from the index: not loaded
    CHECK(a->description == "ABI test accelerator");
    CHECK(reg.require_accel("abi-accel").info != nullptr);
    CHECK(a->module->handle != nullptr);
}
