// SPDX-License-Identifier: MIT
// The module registry: finds modules through the index, checks their ABI, loads them on demand.
#pragma once

#include <climits>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <keel/module.h>

#include "schema.h"

namespace keel
{

// One module file the registry knows of (from an index or a scan).
struct ModuleRecord {
    std::string file; // absolute path
    std::string dir;  // the search-path directory it was found under
    int64_t mtime_ns = 0;
    uint64_t file_size = 0;
    bool ok = false;   // false: refused; `error` says why
    std::string error; // the refusal message
    std::string name, kind, version, description, license;
    uint32_t abi_major = 0, abi_minor = 0;
    std::vector<std::string> types;
    std::vector<std::string> accels; // accelerator names it registers
    std::vector<std::string> boards; // board names it registers
    std::vector<std::string> blocks; // block driver (image format) names it registers
    void *handle = nullptr;          // dlopen handle while loaded
    // As the module itself is, whatever the search path: what the index keeps.
    bool intrinsic_ok = false;
    std::vector<TypeSchema> schemas;
    std::vector<std::pair<std::string, std::string>> accel_schemas; // name, description
    std::vector<std::pair<std::string, std::string>> board_schemas; // name, description
    std::vector<std::pair<std::string, std::string>> block_schemas; // name, description
};

// A registered type: its schema (always) and its descriptor (while loaded).
struct TypeRecord : TypeSchema {
    const KeelDeviceTypeInfo *info = nullptr;
    ModuleRecord *module = nullptr;
};

// A registered accelerator (-accel NAME) or board (a manifest's `board:`):
// known from the index, its descriptor only while its module is loaded.
template <class Info> struct NamedRecord {
    std::string name;
    std::string description;
    const Info *info = nullptr;
    ModuleRecord *module = nullptr;
};
using AccelRecord = NamedRecord<KeelAccelTypeInfo>;
using BoardRecord = NamedRecord<KeelMachineTypeInfo>;
using BlockDriverRecord = NamedRecord<KeelBlockDriverInfo>;

class Registry : public SchemaProvider
{
  public:
    explicit Registry(const KeelServices *services);
    ~Registry() override;
    Registry(const Registry &) = delete;
    Registry &operator=(const Registry &) = delete;

    // The default search path: KEEL_MODULE_PATH (colon-separated), then
    // <dir of the keel binary>/../lib/keel, then ~/.local/lib/keel.
    static std::vector<std::string> default_search_path();
    // Where a directory of the default search path comes from, for --list-modules: "KEEL_MODULE_PATH",
    // "keel's prefix", "user, ~/.local/lib/keel" (else "search path").
    static std::string dir_origin(const std::string &dir);
    void set_search_path(std::vector<std::string> dirs) { search_path_ = std::move(dirs); }
    const std::vector<std::string> &search_path() const { return search_path_; }

    // Read each directory's index, rescan modules that are new or whose mtime
    // or size changed (all of them if `force`), and write the index back when
    // anything changed and the directory is writable.
    void refresh(bool force = false);

    // Load one module file now and register its types. On refusal returns
    // false with `error` set; the registry is then exactly as before.
    bool load_module(const std::string &path, std::string &error);

    // The loaded descriptor of `name`, loading its module if needed. Throws
    // keel::Error if the type is unknown or its module cannot be loaded.
    const TypeRecord &require_type(const std::string &name);

    const TypeSchema *find_type(std::string_view name) const override;
    std::vector<std::string> type_names() const override;
    const TypeRecord *find_record(std::string_view name) const;

    // Accelerators, by the same rules as types: the loaded descriptor of
    // `name` (loading its module), or keel::Error naming the available ones.
    const AccelRecord &require_accel(const std::string &name);
    const AccelRecord *find_accel(std::string_view name) const;
    std::vector<std::string> accel_names() const;
    // Boards, likewise.
    const BoardRecord &require_board(const std::string &name);
    const BoardRecord *find_board(std::string_view name) const;
    std::vector<std::string> board_names() const;
    // Block drivers (image formats: -drive format=, keel-img -f), likewise.
    const BlockDriverRecord &require_block_driver(const std::string &name);
    const BlockDriverRecord *find_block_driver(std::string_view name) const;
    std::vector<std::string> block_driver_names() const;
    const std::vector<std::unique_ptr<ModuleRecord>> &modules() const { return modules_; }

    // Where the index of `dir` is kept.
    static std::string index_path(const std::string &dir);

  private:
    struct Scan;
    // What one module registers.
    struct Found {
        std::vector<std::unique_ptr<TypeRecord>> types;
        std::vector<std::unique_ptr<AccelRecord>> accels;
        std::vector<std::unique_ptr<BoardRecord>> boards;
        std::vector<std::unique_ptr<BlockDriverRecord>> blocks;
    };
    template <class Info>
    using NamedMap = std::map<std::string, std::unique_ptr<NamedRecord<Info>>, std::less<>>;
    // require_accel/require_board: `what` is "accelerator" or "board".
    template <class Info>
    const NamedRecord<Info> &require_named(NamedMap<Info> &map, const std::string &name, const char *what);
    // dlopen + ABI checks + init. What it registers goes to `out` if given
    // (indexing), else straight into the registry (loading).
    bool open_and_register(ModuleRecord &rec, bool keep_loaded, std::string &error, Found *out);
    void publish(ModuleRecord &m, Found found);
    // Who already provides type or accelerator `name` (another module), or "".
    std::string provider_conflict(const ModuleRecord &m, const std::string &what, const std::string &name,
                                  const ModuleRecord *other) const;
    void scan_dir(const std::string &dir, bool force);

    const KeelServices *services_;
    std::vector<std::string> search_path_;
    std::vector<std::unique_ptr<ModuleRecord>> modules_;
    std::map<std::string, std::unique_ptr<TypeRecord>, std::less<>> types_;
    NamedMap<KeelAccelTypeInfo> accels_;
    NamedMap<KeelMachineTypeInfo> boards_;
    NamedMap<KeelBlockDriverInfo> blocks_;
};

// Schema of a registered C descriptor, copied so it outlives the module.
TypeSchema schema_from_info(const KeelDeviceTypeInfo &info);

} // namespace keel
