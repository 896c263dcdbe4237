// SPDX-License-Identifier: MIT
// The module registry: ABI checks, type registration, the per-directory module index, loading on demand.
#include "registry.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <dirent.h>
#include <dlfcn.h>
#include <fstream>
#include <sstream>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"
#include "manifest.h"
#include "util.h"

namespace keel
{

namespace
{

const char *kind_name(uint32_t kind)
{
    switch (kind) {
    case KEEL_MODULE_DEVICE:
        return "device";
    case KEEL_MODULE_ACCEL:
        return "accel";
    case KEEL_MODULE_MACHINE:
        return "machine";
    case KEEL_MODULE_BLOCK:
        return "block";
    default:
        return nullptr;
    }
}

bool valid_name(const char *s)
{
    if (!s || !*s || !(*s >= 'a' && *s <= 'z')) return false;
    for (const char *p = s; *p; ++p)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' || *p == '.'))
            return false;
    return true;
}

bool stat_file(const std::string &path, int64_t &mtime_ns, uint64_t &size)
{
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) return false;
    mtime_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
    size = static_cast<uint64_t>(st.st_size);
    return true;
}

// Index fields are tab-separated; escape what would break a line.
std::string esc(const std::string &s)
{
    std::string out;
    for (char c : s) {
        if (c == '\\')
            out += "\\\\";
        else if (c == '\t')
            out += "\\t";
        else if (c == '\n')
            out += "\\n";
        else
            out += c;
    }
    return out;
}

std::string unesc(const std::string &s)
{
    std::string out;
    for (size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '\\' && i + 1 < s.size()) {
            char n = s[++i];
            out += n == 't' ? '\t' : n == 'n' ? '\n' : n;
        } else {
            out += s[i];
        }
    }
    return out;
}

// Version 2 added accelerators, 3 boards, 4 block drivers, 5 made module paths relative to the index's
// directory (an installed prefix moves, or is packaged, with its index); another version is rebuilt.
constexpr const char *kIndexMagic = "keel-module-index 5";

template <class Map> std::vector<std::string> names_of(const Map &map)
{
    std::vector<std::string> out;
    for (const auto &[n, r] : map)
        out.push_back(n);
    return out;
}

} // namespace

TypeSchema schema_from_info(const KeelDeviceTypeInfo &info)
{
    TypeSchema t;
    t.name = info.name;
    t.description = info.description ? info.description : "";
    for (size_t i = 0; i < info.n_properties; ++i) {
        const KeelPropertyInfo &p = info.properties[i];
        PropSchema s;
        s.name = p.name;
        s.type = p.type;
        s.flags = p.flags;
        s.has_default = p.default_value != nullptr;
        s.default_value = p.default_value ? p.default_value : "";
        s.doc = p.doc ? p.doc : "";
        s.min = p.min;
        s.max = p.max;
        if (p.enum_values)
            for (const char *const *e = p.enum_values; *e; ++e)
                s.enum_values.emplace_back(*e);
        s.link_type = p.link_type ? p.link_type : "";
        s.offset = p.offset;
        t.props.push_back(std::move(s));
    }
    return t;
}

// What a module's init registers into, before the registry accepts it.
struct Registry::Scan {
    KeelRegistrar base; // first: the module sees only this
    Registry *registry;
    ModuleRecord *module;
    Found found;
    std::string error;
    bool check_others = true; // false while indexing: conflicts are resolved per search path

    static int register_device(KeelRegistrar *r, const KeelDeviceTypeInfo *info, KeelError *err);
    static int register_accel(KeelRegistrar *r, const KeelAccelTypeInfo *info, KeelError *err);
    static int register_machine(KeelRegistrar *r, const KeelMachineTypeInfo *info, KeelError *err);
    static int register_block_driver(KeelRegistrar *r, const KeelBlockDriverInfo *info, KeelError *err);
    std::string check(const KeelDeviceTypeInfo *info);
    std::string check(const KeelAccelTypeInfo *info);
    std::string check(const KeelMachineTypeInfo *info);
    std::string check(const KeelBlockDriverInfo *info);
    int result(const std::string &problem, KeelError *err);
};

std::string Registry::Scan::check(const KeelDeviceTypeInfo *info)
{
    if (!info) return "register_device() called with NULL";
    if (info->size < offsetof(KeelDeviceTypeInfo, reserved))
        return strprintf("device type descriptor is %zu bytes, smaller than the %zu bytes of ABI 1.0",
                         info->size, offsetof(KeelDeviceTypeInfo, reserved));
    if (!valid_name(info->name))
        return strprintf("invalid device type name '%s' (use lower-case letters, digits, '-', '_', '.')",
                         info->name ? info->name : "(null)");
    std::string tn = info->name;
    for (const auto &t : found.types)
        if (t->name == tn) return "type '" + tn + "' is registered twice";
    if (const TypeRecord *other = registry->find_record(tn); check_others && other && other->module != module)
        return strprintf("type '%s' is already provided by %s (module %s %s)", tn.c_str(),
                         other->module ? other->module->file.c_str() : "the kernel",
                         other->module ? other->module->name.c_str() : "",
                         other->module ? other->module->version.c_str() : "");
    if (info->n_properties && !info->properties)
        return "type '" + tn + "' declares properties but gives no table";
    if (info->ops && info->ops->size < offsetof(KeelDeviceOps, init))
        return "type '" + tn + "' has a device ops table with an invalid size";
    size_t state = info->instance_size;
    for (size_t i = 0; i < info->n_properties; ++i) {
        const KeelPropertyInfo &p = info->properties[i];
        std::string where = "type '" + tn + "' property " + std::to_string(i);
        if (!valid_name(p.name)) return where + ": invalid name";
        where = "type '" + tn + "' property '" + p.name + "'";
        for (size_t j = 0; j < i; ++j)
            if (std::strcmp(info->properties[j].name, p.name) == 0) return where + " is declared twice";
        size_t sz = prop_storage_size(p.type);
        if (!sz) return where + strprintf(": unknown property type %d", static_cast<int>(p.type));
        if (p.offset + sz > state || p.offset % sz != 0)
            return where + strprintf(": offset %zu does not fit a %s in the %zu-byte instance state",
                                     p.offset, prop_type_name(p.type), state);
        if (p.type == KEEL_PROP_ENUM && (!p.enum_values || !p.enum_values[0]))
            return where + ": enum without values";
        if (p.default_value) {
            PropSchema s = schema_from_info(*info).props[i];
            PropValue v;
            std::string err;
            if (!parse_prop_value(s, p.default_value, v, err)) return where + ": bad default: " + err;
        }
    }
    return {};
}

std::string Registry::Scan::check(const KeelAccelTypeInfo *info)
{
    if (!info) return "register_accel() called with NULL";
    if (info->size < offsetof(KeelAccelTypeInfo, reserved))
        return strprintf("accelerator descriptor is %zu bytes, smaller than the %zu bytes of ABI 1.0",
                         info->size, offsetof(KeelAccelTypeInfo, reserved));
    if (!valid_name(info->name))
        return strprintf("invalid accelerator name '%s' (use lower-case letters, digits, '-', '_', '.')",
                         info->name ? info->name : "(null)");
    std::string an = info->name;
    for (const auto &a : found.accels)
        if (a->name == an) return "accelerator '" + an + "' is registered twice";
    if (const AccelRecord *other = registry->find_accel(an); check_others && other && other->module != module)
        return strprintf("accelerator '%s' is already provided by %s (module %s %s)", an.c_str(),
                         other->module->file.c_str(), other->module->name.c_str(),
                         other->module->version.c_str());
    const KeelAccelOps *ops = info->ops;
    if (!ops) return "accelerator '" + an + "' has no ops table";
    if (ops->size < offsetof(KeelAccelOps, reserved))
        return strprintf(
            "accelerator '%s' has an ops table of %zu bytes, smaller than the %zu bytes of ABI 1.0",
            an.c_str(), ops->size, offsetof(KeelAccelOps, reserved));
    if (!ops->create || !ops->run || !ops->stop)
        return "accelerator '" + an + "' lacks " +
               (!ops->create ? "create"
                : !ops->run  ? "run"
                             : "stop") +
               "() in its ops table (create, run and stop are required)";
    return {};
}

std::string Registry::Scan::check(const KeelMachineTypeInfo *info)
{
    if (!info) return "register_machine() called with NULL";
    if (info->size < offsetof(KeelMachineTypeInfo, reserved))
        return strprintf("board descriptor is %zu bytes, smaller than the %zu bytes of ABI 1.1", info->size,
                         offsetof(KeelMachineTypeInfo, reserved));
    if (!valid_name(info->name))
        return strprintf("invalid board name '%s' (use lower-case letters, digits, '-', '_', '.')",
                         info->name ? info->name : "(null)");
    std::string bn = info->name;
    for (const auto &b : found.boards)
        if (b->name == bn) return "board '" + bn + "' is registered twice";
    if (const BoardRecord *other = registry->find_board(bn); check_others && other && other->module != module)
        return strprintf("board '%s' is already provided by %s (module %s %s)", bn.c_str(),
                         other->module->file.c_str(), other->module->name.c_str(),
                         other->module->version.c_str());
    if (!info->arch || !*info->arch) return "board '" + bn + "' names no CPU architecture";
    const KeelMachineOps *ops = info->ops;
    if (!ops || ops->size < sizeof(KeelMachineOps) || !ops->create || !ops->boot)
        return "board '" + bn + "' lacks an ops table with create() and boot()";
    return {};
}

std::string Registry::Scan::check(const KeelBlockDriverInfo *info)
{
    if (!info) return "register_block_driver() called with NULL";
    if (info->size < offsetof(KeelBlockDriverInfo, reserved))
        return strprintf("block driver descriptor is %zu bytes, smaller than the %zu bytes of ABI 1.1",
                         info->size, offsetof(KeelBlockDriverInfo, reserved));
    if (!valid_name(info->name))
        return strprintf("invalid block driver name '%s' (use lower-case letters, digits, '-', '_', '.')",
                         info->name ? info->name : "(null)");
    std::string bn = info->name;
    for (const auto &b : found.blocks)
        if (b->name == bn) return "block driver '" + bn + "' is registered twice";
    if (const BlockDriverRecord *other = registry->find_block_driver(bn);
        check_others && other && other->module != module)
        return strprintf("block driver '%s' is already provided by %s (module %s %s)", bn.c_str(),
                         other->module->file.c_str(), other->module->name.c_str(),
                         other->module->version.c_str());
    if (info->n_create_options && !info->create_options)
        return "block driver '" + bn + "' declares create options but gives no table";
    const KeelBlockDriverOps *ops = info->ops;
    if (!ops || ops->size < offsetof(KeelBlockDriverOps, reserved))
        return "block driver '" + bn + "' has no ops table of ABI 1.1's size";
    // What the kernel calls without checking: everything else may be NULL ("not supported").
    if (!ops->open || !ops->close || !ops->preadv || !ops->info)
        return "block driver '" + bn + "' lacks " +
               (!ops->open     ? "open"
                : !ops->close  ? "close"
                : !ops->preadv ? "preadv"
                               : "info") +
               "() in its ops table (open, close, preadv and info are required)";
    return {};
}

int Registry::Scan::result(const std::string &problem, KeelError *err)
{
    if (problem.empty()) return KEEL_OK;
    if (err) {
        err->is_set = true;
        err->message = problem;
    }
    if (error.empty()) error = problem;
    return KEEL_ERR;
}

int Registry::Scan::register_device(KeelRegistrar *r, const KeelDeviceTypeInfo *info, KeelError *err)
{
    auto *self = reinterpret_cast<Scan *>(r);
    if (self->result(self->check(info), err) != KEEL_OK) return KEEL_ERR;
    auto rec = std::make_unique<TypeRecord>();
    static_cast<TypeSchema &>(*rec) = schema_from_info(*info);
    rec->info = info;
    rec->module = self->module;
    self->found.types.push_back(std::move(rec));
    return KEEL_OK;
}

int Registry::Scan::register_accel(KeelRegistrar *r, const KeelAccelTypeInfo *info, KeelError *err)
{
    auto *self = reinterpret_cast<Scan *>(r);
    if (self->result(self->check(info), err) != KEEL_OK) return KEEL_ERR;
    auto rec = std::make_unique<AccelRecord>();
    rec->name = info->name;
    rec->description = info->description ? info->description : "";
    rec->info = info;
    rec->module = self->module;
    self->found.accels.push_back(std::move(rec));
    return KEEL_OK;
}

int Registry::Scan::register_machine(KeelRegistrar *r, const KeelMachineTypeInfo *info, KeelError *err)
{
    auto *self = reinterpret_cast<Scan *>(r);
    if (self->result(self->check(info), err) != KEEL_OK) return KEEL_ERR;
    auto rec = std::make_unique<BoardRecord>();
    rec->name = info->name;
    rec->description = info->description ? info->description : "";
    rec->info = info;
    rec->module = self->module;
    self->found.boards.push_back(std::move(rec));
    return KEEL_OK;
}

int Registry::Scan::register_block_driver(KeelRegistrar *r, const KeelBlockDriverInfo *info, KeelError *err)
{
    auto *self = reinterpret_cast<Scan *>(r);
    if (self->result(self->check(info), err) != KEEL_OK) return KEEL_ERR;
    auto rec = std::make_unique<BlockDriverRecord>();
    rec->name = info->name;
    rec->description = info->description ? info->description : "";
    rec->info = info;
    rec->module = self->module;
    self->found.blocks.push_back(std::move(rec));
    return KEEL_OK;
}

Registry::Registry(const KeelServices *services) : services_(services) {}

Registry::~Registry()
{
    // Modules stay mapped for the life of the process: types, timers and
    // callbacks may still point into them during teardown.
}

namespace
{

// The three places modules come from, in search order.
std::vector<std::string> env_module_dirs()
{
    std::vector<std::string> dirs;
    if (const char *env = std::getenv("KEEL_MODULE_PATH"); env && *env)
        for (auto &d : split(env, ':'))
            if (!d.empty()) dirs.push_back(d);
    return dirs;
}

// <prefix>/lib/keel, the prefix being the parent of the directory of the running binary (relocatable).
std::string prefix_module_dir()
{
    char exe[4096];
    ssize_t n = ::readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) return {};
    exe[n] = 0;
    std::string p(exe);
    p = p.substr(0, p.rfind('/')); // bin/
    p = p.substr(0, p.rfind('/')); // prefix
    return p + "/lib/keel";
}

std::string user_module_dir()
{
    const char *home = std::getenv("HOME");
    return home && *home ? std::string(home) + "/.local/lib/keel" : std::string();
}

} // namespace

std::vector<std::string> Registry::default_search_path()
{
    std::vector<std::string> dirs = env_module_dirs();
    if (std::string p = prefix_module_dir(); !p.empty()) dirs.push_back(p);
    if (std::string u = user_module_dir(); !u.empty()) dirs.push_back(u);
    return dirs;
}

std::string Registry::dir_origin(const std::string &dir)
{
    for (const auto &d : env_module_dirs())
        if (d == dir) return "KEEL_MODULE_PATH";
    if (dir == prefix_module_dir()) return "keel's prefix";
    if (dir == user_module_dir()) return "user, ~/.local/lib/keel";
    return "search path";
}

std::string Registry::index_path(const std::string &dir)
{
    if (::access(dir.c_str(), W_OK) == 0) return dir + "/modules.index";
    // Not writable (an installed prefix): keep the index in the user's cache.
    std::string cache;
    if (const char *x = std::getenv("XDG_CACHE_HOME"); x && *x)
        cache = x;
    else if (const char *h = std::getenv("HOME"); h && *h)
        cache = std::string(h) + "/.cache";
    else
        return dir + "/modules.index";
    std::string key = dir;
    for (auto &c : key)
        if (c == '/') c = '_';
    return cache + "/keel/modules" + key + ".index";
}

bool Registry::open_and_register(ModuleRecord &rec, bool keep_loaded, std::string &error, Found *out)
{
    const std::string &f = rec.file;
    dlerror();
    void *h = ::dlopen(f.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        const char *e = dlerror();
        error = f + ": cannot load module: " + (e ? e : "unknown error");
        return false;
    }
    auto fail = [&](std::string msg) {
        error = f + ": " + msg;
        ::dlclose(h);
        return false;
    };
    auto fn = reinterpret_cast<KeelModuleInfoFn>(::dlsym(h, KEEL_MODULE_SYMBOL));
    if (!fn) return fail("not a keel module: it does not export '" KEEL_MODULE_SYMBOL "'");
    const KeelModuleInfo *mi = fn();
    if (!mi) return fail(KEEL_MODULE_SYMBOL "() returned NULL");
    rec.abi_major = mi->abi_major;
    rec.abi_minor = mi->abi_minor;
    if (mi->abi_major != KEEL_ABI_MAJOR)
        return fail(strprintf("module built for keel ABI %u.%u, but this keel provides ABI %u.%u; "
                              "rebuild the module against keel ABI %u.x",
                              mi->abi_major, mi->abi_minor, KEEL_ABI_MAJOR, KEEL_ABI_MINOR, KEEL_ABI_MAJOR));
    if (mi->abi_minor > KEEL_ABI_MINOR)
        return fail(strprintf("module needs keel ABI %u.%u, newer than this keel's ABI %u.%u; "
                              "upgrade keel or rebuild the module against ABI %u.%u",
                              mi->abi_major, mi->abi_minor, KEEL_ABI_MAJOR, KEEL_ABI_MINOR, KEEL_ABI_MAJOR,
                              KEEL_ABI_MINOR));
    if (mi->struct_size < offsetof(KeelModuleInfo, reserved))
        return fail(strprintf("module descriptor is %u bytes, smaller than the %zu bytes of ABI %u.0; "
                              "the module is corrupt or was built against a broken header",
                              mi->struct_size, offsetof(KeelModuleInfo, reserved), KEEL_ABI_MAJOR));
    if (!valid_name(mi->name))
        return fail(strprintf("module has an invalid name '%s'", mi->name ? mi->name : "(null)"));
    rec.name = mi->name;
    if (!kind_name(mi->kind))
        return fail(strprintf("module '%s' has an unknown kind %u", mi->name, mi->kind));
    rec.kind = kind_name(mi->kind);
    if (!mi->version || !semver_valid(mi->version))
        return fail(strprintf("module '%s' has an invalid version '%s' (expected MAJOR.MINOR.PATCH)",
                              mi->name, mi->version ? mi->version : "(null)"));
    rec.version = mi->version;
    rec.description = mi->description ? mi->description : "";
    rec.license = mi->license ? mi->license : "";
    if (!mi->init) return fail(strprintf("module '%s' has no init function", mi->name));

    Scan scan{};
    scan.base.size = sizeof(KeelRegistrar);
    scan.base.services = services_;
    scan.base.register_device = &Scan::register_device;
    scan.base.register_accel = &Scan::register_accel;
    scan.base.register_machine = &Scan::register_machine;
    scan.base.register_block_driver = &Scan::register_block_driver;
    scan.registry = this;
    scan.module = &rec;
    scan.check_others = out == nullptr;
    KeelError err;
    int rc = mi->init(&scan.base, &err);
    if (rc != KEEL_OK || !scan.error.empty()) {
        std::string why = !scan.error.empty() ? scan.error
                          : err.is_set        ? err.message
                                              : "init returned an error";
        return fail(strprintf("module '%s' failed to initialise: %s", mi->name, why.c_str()));
    }

    // Accepted.
    rec.types.clear();
    for (auto &t : scan.found.types) {
        rec.types.push_back(t->name);
        t->kind = rec.kind;
        t->module_name = rec.name;
        t->module_file = rec.file;
        t->module_version = rec.version;
        if (!keep_loaded) t->info = nullptr;
        if (out) {
            out->types.push_back(std::move(t));
            continue;
        }
        auto it = types_.find(t->name);
        if (it != types_.end() && it->second->module == &rec)
            it->second->info = t->info; // now loaded
        else
            types_.emplace(t->name, std::move(t));
    }
    rec.accels.clear();
    for (auto &a : scan.found.accels) {
        rec.accels.push_back(a->name);
        if (!keep_loaded) a->info = nullptr;
        if (out) {
            out->accels.push_back(std::move(a));
            continue;
        }
        auto it = accels_.find(a->name);
        if (it != accels_.end() && it->second->module == &rec)
            it->second->info = a->info;
        else
            accels_.emplace(a->name, std::move(a));
    }
    rec.boards.clear();
    for (auto &b : scan.found.boards) {
        rec.boards.push_back(b->name);
        if (!keep_loaded) b->info = nullptr;
        if (out) {
            out->boards.push_back(std::move(b));
            continue;
        }
        auto it = boards_.find(b->name);
        if (it != boards_.end() && it->second->module == &rec)
            it->second->info = b->info;
        else
            boards_.emplace(b->name, std::move(b));
    }
    rec.blocks.clear();
    for (auto &b : scan.found.blocks) {
        rec.blocks.push_back(b->name);
        if (!keep_loaded) b->info = nullptr;
        if (out) {
            out->blocks.push_back(std::move(b));
            continue;
        }
        auto it = blocks_.find(b->name);
        if (it != blocks_.end() && it->second->module == &rec)
            it->second->info = b->info;
        else
            blocks_.emplace(b->name, std::move(b));
    }
    rec.ok = true;
    rec.error.clear();
    if (keep_loaded)
        rec.handle = h;
    else
        ::dlclose(h);
    return true;
}

bool Registry::load_module(const std::string &path, std::string &error)
{
    auto rec = std::make_unique<ModuleRecord>();
    char real[PATH_MAX];
    rec->file = ::realpath(path.c_str(), real) ? real : path;
    stat_file(rec->file, rec->mtime_ns, rec->file_size);
    for (const auto &m : modules_)
        if (m->file == rec->file && m->handle) return true; // already loaded
    if (!open_and_register(*rec, true, error, nullptr)) return false;
    modules_.push_back(std::move(rec));
    return true;
}

void Registry::scan_dir(const std::string &dir, bool force)
{
    // What the index says about this directory.
    std::map<std::string, std::unique_ptr<ModuleRecord>> indexed;
    std::map<std::string, Found> indexed_found;
    std::string ipath = index_path(dir);
    char real[PATH_MAX];
    std::string rdir = ::realpath(dir.c_str(), real) ? real : dir;
    if (!force) {
        std::ifstream in(ipath);
        std::string line;
        bool magic = in && std::getline(in, line) && line == kIndexMagic;
        if (!magic && ipath != dir + "/modules.index") {
            // A read-only directory (an installed prefix) with no index of ours in the cache yet: the
            // index installed with it, if it is still valid, spares the first run a full scan.
            in = std::ifstream(dir + "/modules.index");
            magic = in && std::getline(in, line) && line == kIndexMagic;
        }
        if (magic) {
            ModuleRecord *cur = nullptr;
            TypeRecord *curt = nullptr;
            while (std::getline(in, line)) {
                auto f = split(line, '\t');
                for (auto &x : f)
                    x = unesc(x);
                if (f[0] == "module" && f.size() == 13) {
                    auto m = std::make_unique<ModuleRecord>();
                    m->file = !f[1].empty() && f[1][0] == '/' ? f[1] : rdir + "/" + f[1];
                    m->dir = dir;
                    m->mtime_ns = std::strtoll(f[2].c_str(), nullptr, 10);
                    m->file_size = std::strtoull(f[3].c_str(), nullptr, 10);
                    m->ok = f[4] == "1";
                    m->name = f[5];
                    m->kind = f[6];
                    m->version = f[7];
                    m->abi_major = static_cast<uint32_t>(std::strtoul(f[8].c_str(), nullptr, 10));
                    m->abi_minor = static_cast<uint32_t>(std::strtoul(f[9].c_str(), nullptr, 10));
                    m->description = f[10];
                    m->license = f[11];
                    m->error = f[12];
                    cur = m.get();
                    curt = nullptr;
                    indexed[m->file] = std::move(m);
                } else if (f[0] == "type" && f.size() == 3 && cur) {
                    auto t = std::make_unique<TypeRecord>();
                    t->name = f[1];
                    t->description = f[2];
                    t->kind = cur->kind;
                    t->module_name = cur->name;
                    t->module_file = cur->file;
                    t->module_version = cur->version;
                    cur->types.push_back(t->name);
                    curt = t.get();
                    indexed_found[cur->file].types.push_back(std::move(t));
                } else if (f[0] == "accel" && f.size() == 3 && cur) {
                    auto a = std::make_unique<AccelRecord>();
                    a->name = f[1];
                    a->description = f[2];
                    cur->accels.push_back(a->name);
                    indexed_found[cur->file].accels.push_back(std::move(a));
                } else if (f[0] == "board" && f.size() == 3 && cur) {
                    auto b = std::make_unique<BoardRecord>();
                    b->name = f[1];
                    b->description = f[2];
                    cur->boards.push_back(b->name);
                    indexed_found[cur->file].boards.push_back(std::move(b));
                } else if (f[0] == "block" && f.size() == 3 && cur) {
                    auto b = std::make_unique<BlockDriverRecord>();
                    b->name = f[1];
                    b->description = f[2];
                    cur->blocks.push_back(b->name);
                    indexed_found[cur->file].blocks.push_back(std::move(b));
                } else if (f[0] == "prop" && f.size() == 12 && curt) {
                    PropSchema p;
                    p.name = f[1];
                    p.type = static_cast<KeelPropType>(std::atoi(f[2].c_str()));
                    p.flags = static_cast<uint32_t>(std::strtoul(f[3].c_str(), nullptr, 10));
                    p.has_default = f[4] == "1";
                    p.default_value = f[5];
                    p.min = std::strtoull(f[6].c_str(), nullptr, 10);
                    p.max = std::strtoull(f[7].c_str(), nullptr, 10);
                    if (!f[8].empty()) p.enum_values = split(f[8], '|');
                    p.link_type = f[9];
                    p.offset = std::strtoull(f[10].c_str(), nullptr, 10);
                    p.doc = f[11];
                    curt->props.push_back(std::move(p));
                } else {
                    indexed.clear(); // unreadable index: rescan everything
                    indexed_found.clear();
                    break;
                }
            }
        }
    }

    // What is on disk: libkeel-*.so in dir and one level below.
    std::vector<std::string> files;
    auto list = [&](const std::string &d, bool recurse) {
        DIR *dp = ::opendir(d.c_str());
        if (!dp) return std::vector<std::string>{};
        std::vector<std::string> subdirs;
        while (dirent *e = ::readdir(dp)) {
            std::string n = e->d_name;
            if (n == "." || n == "..") continue;
            std::string full = d + "/" + n;
            if (n.rfind("libkeel-", 0) == 0 && n.size() > 3 && n.substr(n.size() - 3) == ".so")
                files.push_back(full);
            else if (recurse && (e->d_type == DT_DIR || e->d_type == DT_UNKNOWN))
                subdirs.push_back(full);
        }
        ::closedir(dp);
        return subdirs;
    };
    for (auto &sub : list(rdir, true))
        list(sub, false);
    std::sort(files.begin(), files.end());

    bool changed = force || indexed.size() != files.size();
    std::vector<ModuleRecord *> mine;
    for (const auto &file : files) {
        int64_t mt = 0;
        uint64_t sz = 0;
        stat_file(file, mt, sz);
        Found found;
        std::unique_ptr<ModuleRecord> rec;
        auto it = indexed.find(file);
        if (it != indexed.end() && it->second->mtime_ns == mt && it->second->file_size == sz) {
            rec = std::move(it->second);
            found = std::move(indexed_found[file]);
        } else {
            changed = true;
            rec = std::make_unique<ModuleRecord>();
            rec->file = file;
            rec->dir = dir;
            rec->mtime_ns = mt;
            rec->file_size = sz;
            std::string error;
            if (!open_and_register(*rec, false, error, &found)) {
                rec->ok = false;
                rec->error = error;
            }
        }
        mine.push_back(rec.get());
        publish(*rec, std::move(found));
        modules_.push_back(std::move(rec));
    }
    if (!changed) return;

    // Write the index: only what is intrinsic to each module (conflicts with
    // other directories depend on the search path and are worked out at load).
    std::ostringstream out;
    out << kIndexMagic << "\n";
    for (const ModuleRecord *m : mine) {
        std::string rel = m->file.rfind(rdir + "/", 0) == 0 ? m->file.substr(rdir.size() + 1) : m->file;
        out << "module\t" << esc(rel) << "\t" << m->mtime_ns << "\t" << m->file_size << "\t"
            << (m->intrinsic_ok ? "1" : "0") << "\t" << esc(m->name) << "\t" << esc(m->kind) << "\t"
            << esc(m->version) << "\t" << m->abi_major << "\t" << m->abi_minor << "\t" << esc(m->description)
            << "\t" << esc(m->license) << "\t" << esc(m->intrinsic_ok ? "" : m->error) << "\n";
        for (const auto &t : m->schemas) {
            out << "type\t" << esc(t.name) << "\t" << esc(t.description) << "\n";
            for (const auto &p : t.props)
                out << "prop\t" << esc(p.name) << "\t" << static_cast<int>(p.type) << "\t" << p.flags << "\t"
                    << (p.has_default ? "1" : "0") << "\t" << esc(p.default_value) << "\t" << p.min << "\t"
                    << p.max << "\t" << esc(join(p.enum_values, "|")) << "\t" << esc(p.link_type) << "\t"
                    << p.offset << "\t" << esc(p.doc) << "\n";
        }
        for (const auto &[name, desc] : m->accel_schemas)
            out << "accel\t" << esc(name) << "\t" << esc(desc) << "\n";
        for (const auto &[name, desc] : m->board_schemas)
            out << "board\t" << esc(name) << "\t" << esc(desc) << "\n";
        for (const auto &[name, desc] : m->block_schemas)
            out << "block\t" << esc(name) << "\t" << esc(desc) << "\n";
    }
    std::string dir_of_index = ipath.substr(0, ipath.rfind('/'));
    std::string mk = dir_of_index;
    for (size_t pos = 1; (pos = mk.find('/', pos)) != std::string::npos; ++pos)
        ::mkdir(mk.substr(0, pos).c_str(), 0755);
    ::mkdir(mk.c_str(), 0755);
    std::string tmp = ipath + ".tmp" + std::to_string(::getpid());
    {
        std::ofstream f(tmp);
        f << out.str();
        if (!f) {
            ::unlink(tmp.c_str());
            return; // a cache we cannot write is not an error
        }
    }
    if (::rename(tmp.c_str(), ipath.c_str()) != 0) ::unlink(tmp.c_str());
}

std::string Registry::provider_conflict(const ModuleRecord &m, const std::string &what,
                                        const std::string &name, const ModuleRecord *other) const
{
    return strprintf("%s: %s '%s' is already provided by %s (module %s %s)", m.file.c_str(), what.c_str(),
                     name.c_str(), other ? other->file.c_str() : "the kernel",
                     other ? other->name.c_str() : "", other ? other->version.c_str() : "");
}

void Registry::publish(ModuleRecord &m, Found found)
{
    m.intrinsic_ok = m.ok;
    m.schemas.clear();
    for (const auto &t : found.types)
        m.schemas.push_back(*t);
    m.accel_schemas.clear();
    for (const auto &a : found.accels)
        m.accel_schemas.emplace_back(a->name, a->description);
    m.board_schemas.clear();
    for (const auto &b : found.boards)
        m.board_schemas.emplace_back(b->name, b->description);
    m.block_schemas.clear();
    for (const auto &b : found.blocks)
        m.block_schemas.emplace_back(b->name, b->description);
    if (!m.ok) return;
    // The first module on the search path to provide a type wins; a later
    // one is refused whole, so a type never comes from two places.
    for (auto &t : found.types) {
        if (const TypeRecord *o = find_record(t->name); o && o->module != &m) {
            m.ok = false;
            m.error = provider_conflict(m, "type", t->name, o->module);
            return;
        }
    }
    for (auto &a : found.accels) {
        if (const AccelRecord *o = find_accel(a->name); o && o->module != &m) {
            m.ok = false;
            m.error = provider_conflict(m, "accelerator", a->name, o->module);
            return;
        }
    }
    for (auto &b : found.boards) {
        if (const BoardRecord *o = find_board(b->name); o && o->module != &m) {
            m.ok = false;
            m.error = provider_conflict(m, "board", b->name, o->module);
            return;
        }
    }
    for (auto &b : found.blocks) {
        if (const BlockDriverRecord *o = find_block_driver(b->name); o && o->module != &m) {
            m.ok = false;
            m.error = provider_conflict(m, "block driver", b->name, o->module);
            return;
        }
    }
    for (auto &t : found.types) {
        t->module = &m;
        types_.emplace(t->name, std::move(t));
    }
    for (auto &a : found.accels) {
        a->module = &m;
        accels_.emplace(a->name, std::move(a));
    }
    for (auto &b : found.boards) {
        b->module = &m;
        boards_.emplace(b->name, std::move(b));
    }
    for (auto &b : found.blocks) {
        b->module = &m;
        blocks_.emplace(b->name, std::move(b));
    }
}

void Registry::refresh(bool force)
{
    // Loaded modules stay loaded; forget only what came from indexes.
    std::vector<std::unique_ptr<ModuleRecord>> keep;
    for (auto &m : modules_)
        if (m->handle) keep.push_back(std::move(m));
    modules_ = std::move(keep);
    for (auto it = types_.begin(); it != types_.end();)
        it = (it->second->module && it->second->module->handle) ? std::next(it) : types_.erase(it);
    for (auto it = accels_.begin(); it != accels_.end();)
        it = (it->second->module && it->second->module->handle) ? std::next(it) : accels_.erase(it);
    for (auto it = boards_.begin(); it != boards_.end();)
        it = (it->second->module && it->second->module->handle) ? std::next(it) : boards_.erase(it);
    for (auto it = blocks_.begin(); it != blocks_.end();)
        it = (it->second->module && it->second->module->handle) ? std::next(it) : blocks_.erase(it);
    for (const auto &d : search_path_) {
        struct stat st;
        if (::stat(d.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) continue;
        scan_dir(d, force);
    }
}

const TypeRecord &Registry::require_type(const std::string &name)
{
    auto it = types_.find(name);
    if (it == types_.end()) throw Error("unknown type '" + name + "'" + did_you_mean(name, type_names()));
    TypeRecord &t = *it->second;
    if (t.info) return t;
    ModuleRecord *m = t.module;
    if (!m || !m->ok) throw Error(m ? m->error : "type '" + name + "' has no module");
    std::string error;
    if (!open_and_register(*m, true, error, nullptr)) {
        m->ok = false;
        m->error = error;
        throw Error(error);
    }
    it = types_.find(name);
    if (it == types_.end() || !it->second->info)
        throw Error(m->file + ": module no longer provides type '" + name + "'; run keel --rebuild-index");
    return *it->second;
}

const TypeRecord *Registry::find_record(std::string_view name) const
{
    auto it = types_.find(name);
    return it == types_.end() ? nullptr : it->second.get();
}

const TypeSchema *Registry::find_type(std::string_view name) const
{
    return find_record(name);
}

std::vector<std::string> Registry::type_names() const
{
    return names_of(types_);
}

template <class Info>
const NamedRecord<Info> &Registry::require_named(NamedMap<Info> &map, const std::string &name,
                                                 const char *what)
{
    auto it = map.find(name);
    if (it == map.end()) {
        std::vector<std::string> names = names_of(map);
        std::string hint = did_you_mean(name, names);
        throw Error(std::string("unknown ") + what + " '" + name + "'" + hint +
                    (names.empty() ? std::string(" (no ") + what + " module is installed)"
                                   : " (available: " + join(names, ", ") + ")"));
    }
    NamedRecord<Info> &a = *it->second;
    if (a.info) return a;
    ModuleRecord *m = a.module;
    if (!m || !m->ok) throw Error(m ? m->error : std::string(what) + " '" + name + "' has no module");
    std::string error;
    if (!open_and_register(*m, true, error, nullptr)) {
        m->ok = false;
        m->error = error;
        throw Error(error);
    }
    it = map.find(name);
    if (it == map.end() || !it->second->info)
        throw Error(m->file + ": module no longer provides " + what + " '" + name +
                    "'; run keel --rebuild-index");
    return *it->second;
}

const AccelRecord &Registry::require_accel(const std::string &name)
{
    return require_named(accels_, name, "accelerator");
}

const AccelRecord *Registry::find_accel(std::string_view name) const
{
    auto it = accels_.find(name);
    return it == accels_.end() ? nullptr : it->second.get();
}

std::vector<std::string> Registry::accel_names() const
{
    return names_of(accels_);
}

const BoardRecord &Registry::require_board(const std::string &name)
{
    return require_named(boards_, name, "board");
}

const BoardRecord *Registry::find_board(std::string_view name) const
{
    auto it = boards_.find(name);
    return it == boards_.end() ? nullptr : it->second.get();
}

std::vector<std::string> Registry::board_names() const
{
    return names_of(boards_);
}

const BlockDriverRecord &Registry::require_block_driver(const std::string &name)
{
    return require_named(blocks_, name, "block driver");
}

const BlockDriverRecord *Registry::find_block_driver(std::string_view name) const
{
    auto it = blocks_.find(name);
    return it == blocks_.end() ? nullptr : it->second.get();
}

std::vector<std::string> Registry::block_driver_names() const
{
    return names_of(blocks_);
}

} // namespace keel
