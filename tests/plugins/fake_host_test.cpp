// SPDX-License-Identifier: MIT
// Runs the example plugins in a fake emulator: a scripted guest (two blocks of real RISC-V encodings,
// two vCPUs, memory accesses, traps) and just enough of the QEMU plugin API to drive them, so the
// plugins' behaviour is tested without the keel kernel. The API entries dispatch on each plugin's
// declared qemu_plugin_version, as docs/drafts/qemu-plugin-abi.md proposes for keel, which lets one
// process run the v1, v4 and v7 builds of insn side by side.
#include <catch2/catch.hpp>
#include <dlfcn.h>
#include <glib.h>

#include <cstdarg>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

namespace
{

// ---- the scripted guest ---------------------------------------------------------------------------

struct Access {
    uint64_t vaddr;
    unsigned size_shift;
    bool store;
    uint64_t value;
    bool io;
};

struct GuestInsn {
    uint64_t vaddr;
    uint32_t bits;
    unsigned size;
    std::vector<Access> accesses;
};

// Block A (3 insns): li t0,3; c.addi t0,-1; bnez t0,A+4. Block B (3 insns): lui t1,0x100;
// sw t2,0(t1) (MMIO store to sifive-test); ld a1,32(t0) (RAM load).
const std::vector<std::vector<GuestInsn>> kBlocks = {
    {{0x80000000, 0x00300293, 4, {}}, {0x80000004, 0x12fd, 2, {}}, {0x80000006, 0xfe029fe3, 4, {}}},
    {{0x8000000a, 0x00100337, 4, {}},
     {0x8000000e, 0x00732023, 4, {{0x100000, 2, true, 0x5555, true}}},
     {0x80000012, 0x0202b583, 4, {{0x80001000, 3, false, 0x1122334455667788, false}}}},
};

enum class Step { Block, Interrupt, Exception };
struct TraceStep {
    Step what;
    unsigned vcpu;
    size_t block; // for Step::Block
};
// vCPU 0 runs A three times and B once, then takes an interrupt; vCPU 1 runs B and takes an exception.
const std::vector<TraceStep> kTrace = {{Step::Block, 0, 0},    {Step::Block, 0, 0},     {Step::Block, 0, 0},
                                       {Step::Block, 0, 1},    {Step::Interrupt, 0, 0}, {Step::Block, 1, 1},
                                       {Step::Exception, 1, 0}};
constexpr unsigned kVcpus = 2;

// ---- the host's side of the plugin API --------------------------------------------------------------

struct Scoreboard {
    size_t size;
    std::vector<uint8_t> data; // kVcpus entries
};
struct U64 {
    Scoreboard *score;
    size_t offset;
};
uint64_t *slot(U64 e, unsigned vcpu)
{
    return (uint64_t *)(e.score->data.data() + vcpu * e.score->size + e.offset);
}

enum Op { ADD_U64, STORE_U64 };
struct Inline {
    int op;
    U64 entry;     // per-vCPU form
    uint64_t *ptr; // v1 form
    uint64_t imm;
    int rw;
};
struct ExecCb {
    void *cb;
    void *udata;
    int rw; // memory callbacks
};
struct Plugin;
struct Insn {
    const GuestInsn *guest;
    std::vector<ExecCb> exec, mem;
    std::vector<Inline> exec_inline, mem_inline;
};
struct Tb {
    std::vector<Insn> insns;
    std::vector<ExecCb> exec;
    std::vector<Inline> exec_inline;
};
struct Plugin {
    void *handle = nullptr;
    int version = 0;
    void *tb_trans = nullptr, *tb_trans_ud = nullptr;
    void *atexit = nullptr, *atexit_ud = nullptr;
    void *init = nullptr, *init_ud = nullptr;
    void *exit = nullptr, *exit_ud = nullptr;
    void *discon = nullptr, *discon_ud = nullptr;
    int discon_mask = 0;
};

struct Host {
    std::vector<std::unique_ptr<Plugin>> plugins;
    std::map<size_t, std::vector<std::unique_ptr<Tb>>> tbs; // per block, one Tb per translation
    std::string log;
    Plugin *current = nullptr; // the plugin being called, for the entries without an id
    unsigned vcpu = 0;         // the vCPU running a callback
    uint64_t retired = 0;      // instructions executed so far on the current vCPU (a1's fake value)
};
Host *host;

Plugin *by_id(uint64_t id)
{
    return host->plugins.at(id).get();
}

struct Hwaddr {
    uint64_t paddr;
    bool io;
};
const Access *current_access;
Hwaddr current_hwaddr;

struct RegDescV2 {
    void *handle;
    const char *name, *feature;
};
struct RegDescV6 {
    void *handle;
    const char *name, *feature;
    bool is_readonly;
};
const char *const kRegNames[] = {"pc", "a0", "a1"};

} // namespace

// The entries plugins call. Signatures are the widest form over the versions; the extra arguments of a
// newer version are read only when the caller declared that version.
extern "C" {
__attribute__((visibility("default"))) void qemu_plugin_outs(const char *s)
{
    host->log += s;
}
__attribute__((visibility("default"))) bool qemu_plugin_bool_parse(const char *name, const char *val,
                                                                   bool *ret)
{
    (void)name;
    if (!strcmp(val, "on") || !strcmp(val, "yes") || !strcmp(val, "true")) {
        *ret = true;
        return true;
    }
    if (!strcmp(val, "off") || !strcmp(val, "no") || !strcmp(val, "false")) {
        *ret = false;
        return true;
    }
    return false;
}
__attribute__((visibility("default"))) void qemu_plugin_register_vcpu_tb_trans_cb(uint64_t id, void *cb,
                                                                                  void *ud)
{
    Plugin *p = by_id(id);
    p->tb_trans = cb;
    p->tb_trans_ud = p->version >= 7 ? ud : nullptr;
}
__attribute__((visibility("default"))) void qemu_plugin_register_atexit_cb(uint64_t id, void *cb, void *ud)
{
    by_id(id)->atexit = cb, by_id(id)->atexit_ud = ud;
}
__attribute__((visibility("default"))) void qemu_plugin_register_vcpu_init_cb(uint64_t id, void *cb, void *ud)
{
    Plugin *p = by_id(id);
    p->init = cb, p->init_ud = p->version >= 7 ? ud : nullptr;
}
__attribute__((visibility("default"))) void qemu_plugin_register_vcpu_exit_cb(uint64_t id, void *cb, void *ud)
{
    Plugin *p = by_id(id);
    p->exit = cb, p->exit_ud = p->version >= 7 ? ud : nullptr;
}
__attribute__((visibility("default"))) void qemu_plugin_register_vcpu_discon_cb(uint64_t id, int type,
                                                                                void *cb, void *ud)
{
    Plugin *p = by_id(id);
    p->discon = cb, p->discon_mask = type, p->discon_ud = p->version >= 7 ? ud : nullptr;
}
__attribute__((visibility("default"))) int qemu_plugin_num_vcpus(void)
{
    return kVcpus;
}
__attribute__((visibility("default"))) int qemu_plugin_n_vcpus(void)
{
    return kVcpus;
}
__attribute__((visibility("default"))) int qemu_plugin_n_max_vcpus(void)
{
    return kVcpus;
}

__attribute__((visibility("default"))) void *qemu_plugin_scoreboard_new(size_t size)
{
    return new Scoreboard{size, std::vector<uint8_t>(size * kVcpus)};
}
__attribute__((visibility("default"))) void qemu_plugin_scoreboard_free(void *s)
{
    delete (Scoreboard *)s;
}
__attribute__((visibility("default"))) void *qemu_plugin_scoreboard_find(void *s, unsigned vcpu)
{
    auto *sb = (Scoreboard *)s;
    return sb->data.data() + vcpu * sb->size;
}
__attribute__((visibility("default"))) void qemu_plugin_u64_add(U64 e, unsigned vcpu, uint64_t v)
{
    *slot(e, vcpu) += v;
}
__attribute__((visibility("default"))) uint64_t qemu_plugin_u64_get(U64 e, unsigned vcpu)
{
    return *slot(e, vcpu);
}
__attribute__((visibility("default"))) void qemu_plugin_u64_set(U64 e, unsigned vcpu, uint64_t v)
{
    *slot(e, vcpu) = v;
}
__attribute__((visibility("default"))) uint64_t qemu_plugin_u64_sum(U64 e)
{
    uint64_t sum = 0;
    for (unsigned i = 0; i < kVcpus; i++) {
        sum += *slot(e, i);
    }
    return sum;
}

__attribute__((visibility("default"))) size_t qemu_plugin_tb_n_insns(const Tb *tb)
{
    return tb->insns.size();
}
__attribute__((visibility("default"))) uint64_t qemu_plugin_tb_vaddr(const Tb *tb)
{
    return tb->insns[0].guest->vaddr;
}
__attribute__((visibility("default"))) Insn *qemu_plugin_tb_get_insn(const Tb *tb, size_t i)
{
    return i < tb->insns.size() ? const_cast<Insn *>(&tb->insns[i]) : nullptr;
}
// v1-v2: returns a pointer to the bytes; v3+: copies up to len bytes to dest and returns the count.
__attribute__((visibility("default"))) uintptr_t qemu_plugin_insn_data(const Insn *insn, void *dest,
                                                                       size_t len)
{
    if (host->current->version <= 2) {
        return (uintptr_t)&insn->guest->bits;
    }
    size_t n = std::min<size_t>(len, insn->guest->size);
    memcpy(dest, &insn->guest->bits, n);
    return n;
}
__attribute__((visibility("default"))) size_t qemu_plugin_insn_size(const Insn *insn)
{
    return insn->guest->size;
}
__attribute__((visibility("default"))) uint64_t qemu_plugin_insn_vaddr(const Insn *insn)
{
    return insn->guest->vaddr;
}
__attribute__((visibility("default"))) void *qemu_plugin_insn_haddr(const Insn *insn)
{
    return (void *)(uintptr_t)insn->guest->vaddr; // no MMU: physical == virtual
}
__attribute__((visibility("default"))) char *qemu_plugin_insn_disas(const Insn *insn)
{
    return g_strdup_printf("insn%08x", insn->guest->bits);
}

__attribute__((visibility("default"))) void qemu_plugin_register_vcpu_tb_exec_cb(Tb *tb, void *cb, int flags,
                                                                                 void *ud)
{
    (void)flags;
    tb->exec.push_back({cb, ud, 0});
}
__attribute__((visibility("default"))) void qemu_plugin_register_vcpu_insn_exec_cb(Insn *insn, void *cb,
                                                                                   int flags, void *ud)
{
    (void)flags;
    insn->exec.push_back({cb, ud, 0});
}
__attribute__((visibility("default"))) void qemu_plugin_register_vcpu_mem_cb(Insn *insn, void *cb, int flags,
                                                                             int rw, void *ud)
{
    (void)flags;
    insn->mem.push_back({cb, ud, rw});
}
__attribute__((visibility("default"))) void
qemu_plugin_register_vcpu_tb_exec_inline(Tb *tb, int op, uint64_t *ptr, uint64_t imm)
{
    tb->exec_inline.push_back({op, {}, ptr, imm, 0});
}
__attribute__((visibility("default"))) void
qemu_plugin_register_vcpu_insn_exec_inline(Insn *insn, int op, uint64_t *ptr, uint64_t imm)
{
    insn->exec_inline.push_back({op, {}, ptr, imm, 0});
}
__attribute__((visibility("default"))) void qemu_plugin_register_vcpu_mem_inline(Insn *insn, int rw, int op,
                                                                                 uint64_t *ptr, uint64_t imm)
{
    insn->mem_inline.push_back({op, {}, ptr, imm, rw});
}
__attribute__((visibility("default"))) void
qemu_plugin_register_vcpu_tb_exec_inline_per_vcpu(Tb *tb, int op, U64 e, uint64_t imm)
{
    tb->exec_inline.push_back({op, e, nullptr, imm, 0});
}
__attribute__((visibility("default"))) void
qemu_plugin_register_vcpu_insn_exec_inline_per_vcpu(Insn *insn, int op, U64 e, uint64_t imm)
{
    insn->exec_inline.push_back({op, e, nullptr, imm, 0});
}
__attribute__((visibility("default"))) void
qemu_plugin_register_vcpu_mem_inline_per_vcpu(Insn *insn, int rw, int op, U64 e, uint64_t imm)
{
    insn->mem_inline.push_back({op, e, nullptr, imm, rw});
}

__attribute__((visibility("default"))) bool qemu_plugin_mem_is_store(uint32_t info)
{
    (void)info;
    return current_access->store;
}
__attribute__((visibility("default"))) unsigned qemu_plugin_mem_size_shift(uint32_t info)
{
    (void)info;
    return current_access->size_shift;
}
struct MemValue {
    int type;
    uint64_t lo, hi;
};
__attribute__((visibility("default"))) MemValue qemu_plugin_mem_get_value(uint32_t info)
{
    (void)info;
    return {(int)current_access->size_shift, current_access->value, 0};
}
__attribute__((visibility("default"))) Hwaddr *qemu_plugin_get_hwaddr(uint32_t info, uint64_t vaddr)
{
    (void)info;
    current_hwaddr = {vaddr, current_access->io};
    return &current_hwaddr;
}
__attribute__((visibility("default"))) bool qemu_plugin_hwaddr_is_io(const Hwaddr *h)
{
    return h->io;
}
__attribute__((visibility("default"))) uint64_t qemu_plugin_hwaddr_phys_addr(const Hwaddr *h)
{
    return h->paddr;
}
__attribute__((visibility("default"))) const char *qemu_plugin_hwaddr_device_name(const Hwaddr *h)
{
    return h->io ? "sifive_test" : "RAM";
}

// v2-v5 descriptors are 24 bytes, v6+ add is_readonly (32 bytes): the element size follows the caller.
__attribute__((visibility("default"))) GArray *qemu_plugin_get_registers(void)
{
    bool v6 = host->current->version >= 6;
    GArray *a = g_array_new(FALSE, FALSE, v6 ? sizeof(RegDescV6) : sizeof(RegDescV2));
    for (uintptr_t i = 0; i < G_N_ELEMENTS(kRegNames); i++) {
        RegDescV6 d = {(void *)(i + 1), kRegNames[i], "org.gnu.gdb.riscv.cpu", i == 0};
        g_array_append_vals(a, &d, 1);
    }
    return a;
}
// v2-v5 return the size read (or -1), v6+ return true: the value depends on the caller.
__attribute__((visibility("default"))) int qemu_plugin_read_register(void *handle, GByteArray *buf)
{
    uint64_t v = (uintptr_t)handle == 3 ? host->retired : (uintptr_t)handle == 2 ? 7 : 0x80000000;
    g_byte_array_append(buf, (const guint8 *)&v, 8);
    return host->current->version >= 6 ? 1 : 8;
}
}

namespace
{

void apply(const Inline &op, unsigned vcpu)
{
    uint64_t *p = op.ptr ? op.ptr : slot(op.entry, vcpu);
    *p = op.op == ADD_U64 ? *p + op.imm : op.imm;
}

// The translated form of block @b, translated on first use as an emulator would.
Tb *translate(size_t b)
{
    auto &list = host->tbs[b];
    if (!list.empty()) {
        return list.back().get();
    }
    auto tb = std::make_unique<Tb>();
    for (const GuestInsn &g : kBlocks[b]) {
        tb->insns.push_back(Insn{&g, {}, {}, {}, {}});
    }
    for (auto &p : host->plugins) {
        if (!p->tb_trans) {
            continue;
        }
        host->current = p.get();
        if (p->version >= 7) {
            ((void (*)(Tb *, void *))p->tb_trans)(tb.get(), p->tb_trans_ud);
        } else {
            ((void (*)(uint64_t, Tb *))p->tb_trans)(0, tb.get());
        }
    }
    list.push_back(std::move(tb));
    return list.back().get();
}

Plugin *owner_of(const void *cb)
{
    Dl_info info;
    if (dladdr(cb, &info)) {
        for (auto &p : host->plugins) {
            Dl_info other;
            void *sym = dlsym(p->handle, "qemu_plugin_install");
            if (sym && dladdr(sym, &other) && other.dli_fbase == info.dli_fbase) {
                return p.get();
            }
        }
    }
    return nullptr;
}

void run(const TraceStep &s)
{
    host->vcpu = s.vcpu;
    if (s.what != Step::Block) {
        int type = s.what == Step::Interrupt ? 1 : 2;
        for (auto &p : host->plugins) {
            if (p->discon && (p->discon_mask & type)) {
                host->current = p.get();
                if (p->version >= 7) {
                    ((void (*)(unsigned, int, uint64_t, uint64_t, void *))p->discon)(
                        s.vcpu, type, 0x80000016, 0x80000100, p->discon_ud);
                } else {
                    ((void (*)(uint64_t, unsigned, int, uint64_t, uint64_t))p->discon)(
                        0, s.vcpu, type, 0x80000016, 0x80000100);
                }
            }
        }
        return;
    }
    Tb *tb = translate(s.block);
    for (const Inline &op : tb->exec_inline) {
        apply(op, s.vcpu);
    }
    for (const ExecCb &cb : tb->exec) {
        host->current = owner_of(cb.cb);
        ((void (*)(unsigned, void *))cb.cb)(s.vcpu, cb.udata);
    }
    for (Insn &insn : tb->insns) {
        for (const Inline &op : insn.exec_inline) {
            apply(op, s.vcpu);
        }
        for (const ExecCb &cb : insn.exec) {
            host->current = owner_of(cb.cb);
            ((void (*)(unsigned, void *))cb.cb)(s.vcpu, cb.udata);
        }
        host->retired++;
        for (const Access &a : insn.guest->accesses) {
            current_access = &a;
            int kind = a.store ? 2 : 1;
            for (const Inline &op : insn.mem_inline) {
                if (op.rw & kind) {
                    apply(op, s.vcpu);
                }
            }
            for (const ExecCb &cb : insn.mem) {
                if (cb.rw & kind) {
                    host->current = owner_of(cb.cb);
                    ((void (*)(unsigned, uint32_t, uint64_t, void *))cb.cb)(s.vcpu, 0, a.vaddr, cb.udata);
                }
            }
        }
    }
}

// Loads each "libNAME.so,arg=value,..." from the plugin directory, runs the trace, returns the log.
// An install that fails is reported as "install failed: NAME".
std::string run_plugins(const std::vector<std::string> &specs)
{
    Host h;
    host = &h;
    std::vector<std::vector<std::string>> args(specs.size());
    std::vector<std::vector<char *>> argvs(specs.size());
    for (size_t i = 0; i < specs.size(); i++) {
        gchar **parts = g_strsplit(specs[i].c_str(), ",", -1);
        std::string path = std::string(KEEL_QEMU_PLUGIN_DIR) + "/" + parts[0];
        for (gchar **a = parts + 1; *a; a++) {
            args[i].push_back(*a);
        }
        g_strfreev(parts);
        auto p = std::make_unique<Plugin>();
        p->handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
        REQUIRE(p->handle != nullptr);
        auto *version = (int *)dlsym(p->handle, "qemu_plugin_version");
        REQUIRE(version != nullptr);
        p->version = *version;
        h.plugins.push_back(std::move(p));
    }
    for (size_t i = 0; i < h.plugins.size(); i++) {
        for (auto &a : args[i]) {
            argvs[i].push_back(a.data());
        }
        h.current = h.plugins[i].get();
        auto install =
            (int (*)(uint64_t, const void *, int, char **))dlsym(h.plugins[i]->handle, "qemu_plugin_install");
        struct {
            const char *target;
            int min, cur;
            bool system;
            int smp, max;
        } info = {"riscv64", 1, 7, true, kVcpus, kVcpus};
        if (install(i, &info, (int)argvs[i].size(), argvs[i].data()) != 0) {
            h.log += "install failed: " + specs[i] + "\n";
            h.plugins[i]->tb_trans = h.plugins[i]->atexit = h.plugins[i]->init = h.plugins[i]->exit = nullptr;
            h.plugins[i]->discon = nullptr;
        }
    }
    auto vcpu_event = [&](bool init) {
        for (unsigned v = 0; v < kVcpus; v++) {
            h.vcpu = v;
            for (auto &p : h.plugins) {
                void *cb = init ? p->init : p->exit;
                h.current = p.get();
                if (cb && p->version >= 7) {
                    ((void (*)(unsigned, void *))cb)(v, init ? p->init_ud : p->exit_ud);
                } else if (cb) {
                    ((void (*)(uint64_t, unsigned))cb)(0, v);
                }
            }
        }
    };
    vcpu_event(true);
    for (const TraceStep &s : kTrace) {
        run(s);
    }
    vcpu_event(false);
    for (auto &p : h.plugins) {
        h.current = p.get();
        if (p->atexit && p->version >= 7) {
            ((void (*)(void *))p->atexit)(p->atexit_ud);
        } else if (p->atexit) {
            ((void (*)(uint64_t, void *))p->atexit)(0, p->atexit_ud);
        }
    }
    std::string log = h.log;
    for (auto &p : h.plugins) {
        dlclose(p->handle);
    }
    host = nullptr;
    return log;
}

bool has_line(const std::string &log, const std::string &line)
{
    std::istringstream in(log);
    for (std::string l; std::getline(in, l);) {
        if (l == line) {
            return true;
        }
    }
    return false;
}

} // namespace

// 15 instructions run: block A (3) three times on vCPU 0, block B (3) once on each vCPU.
// A process holds one copy of a .so, so each run loads each build once.
TEST_CASE("insn counts the same in callback and inline mode, in API versions 1, 4 and 7 at once", "[plugins]")
{
    const std::string three = "insns: 15\ninsns: 15\ninsns: 15\n";
    CHECK(run_plugins({"libinsn-v1.so", "libinsn-v4.so", "libinsn.so"}) == three);
    CHECK(run_plugins({"libinsn-v1.so,inline=on", "libinsn-v4.so,inline=on", "libinsn.so,inline=on"}) ==
          three);
}

TEST_CASE("bb counts blocks and instructions per vCPU, inline and by callback", "[plugins]")
{
    for (const char *spec : {"libbb.so", "libbb.so,inline=off"}) {
        std::string log = run_plugins({spec});
        INFO(spec << "\n" << log);
        CHECK(log == "cpu 0 bb: 4 insns: 12\ncpu 1 bb: 1 insns: 3\nbb: 5 insns: 15\n");
    }
}

TEST_CASE("mem sees each access with its size, value and device", "[plugins]")
{
    std::string log = run_plugins({"libmem.so,trace=on"});
    INFO(log);
    CHECK(log == "store vaddr=0x100000 paddr=0x100000 size=4 value=0x00005555 io=sifive_test\n"
                 "load vaddr=0x80001000 paddr=0x80001000 size=8 value=0x1122334455667788\n"
                 "store vaddr=0x100000 paddr=0x100000 size=4 value=0x00005555 io=sifive_test\n"
                 "load vaddr=0x80001000 paddr=0x80001000 size=8 value=0x1122334455667788\n"
                 "loads: 2 stores: 2\n");
    CHECK(run_plugins({"libmem.so,rw=w"}) == "loads: 0 stores: 2\n");
    CHECK(run_plugins({"libmem.so,inline=on"}) == "accesses: 4\n");
    CHECK(run_plugins({"libmem.so,inline=on,rw=r"}) == "accesses: 2\n");
    CHECK(run_plugins({"libmem-v1.so"}) == "loads: 2 stores: 2\n");
    CHECK(run_plugins({"libmem-v1.so,inline=on"}) == "accesses: 4\n");
}

TEST_CASE("howvec classifies the RISC-V encodings, inline and by callback", "[plugins]")
{
    for (const char *spec : {"libhowvec.so", "libhowvec.so,inline=off"}) {
        std::string log = run_plugins({spec});
        INFO(spec << "\n" << log);
        CHECK(log == "load: 2\nstore: 2\nbranch: 3\nalu-imm: 3\nlui/auipc: 2\ncompressed: 3\ntotal: 15\n");
    }
}

TEST_CASE("hotblocks lists blocks by executions", "[plugins]")
{
    CHECK(run_plugins({"libhotblocks.so"}) == "collected 2 blocks\npc, insns, executions\n"
                                              "0x0000000080000000, 3, 3\n0x000000008000000a, 3, 2\n");
    CHECK(run_plugins({"libhotblocks.so,limit=1"}) == "collected 2 blocks\npc, insns, executions\n"
                                                      "0x0000000080000000, 3, 3\n");
}

TEST_CASE("hotpages counts accesses per physical page", "[plugins]")
{
    CHECK(run_plugins({"libhotpages.so,sortby=address"}) ==
          "addr, reads, writes\n0x0000000000100000, 0, 2\n0x0000000080001000, 2, 0\n");
    CHECK(run_plugins({"libhotpages.so,sortby=reads"}) ==
          "addr, reads, writes\n0x0000000080001000, 2, 0\n0x0000000000100000, 0, 2\n");
}

TEST_CASE("traps counts discontinuities per vCPU", "[plugins]")
{
    std::string log = run_plugins({"libtraps.so,trace=on"});
    INFO(log);
    CHECK(log == "cpu 0 interrupt from 0x80000016 to 0x80000100\n"
                 "cpu 1 exception from 0x80000016 to 0x80000100\n"
                 "cpu 0 interrupts: 1 exceptions: 0 hostcalls: 0\n"
                 "cpu 1 interrupts: 0 exceptions: 1 hostcalls: 0\n"
                 "interrupts: 1 exceptions: 1 hostcalls: 0\n");
}

// All 15 fetches fall in one 64-byte line (one L1I miss); the two RAM loads hit one line (one L1D miss);
// the MMIO stores are not cached; L2 sees the two L1 misses, in different lines.
TEST_CASE("cache models L1I, L1D and L2 misses", "[plugins]")
{
    CHECK(run_plugins({"libcache.so"}) == "L1I accesses: 15 misses: 1 miss-rate: 6.67%\n"
                                          "L1D accesses: 2 misses: 1 miss-rate: 50.00%\n"
                                          "L2 accesses: 2 misses: 2 miss-rate: 100.00%\n");
    CHECK(run_plugins({"libcache.so,l2=off,dblksize=128"}) ==
          "L1I accesses: 15 misses: 1 miss-rate: 6.67%\n"
          "L1D accesses: 2 misses: 1 miss-rate: 50.00%\n");
}

// a1 reads as the number of instructions retired so far, so every instruction changes it.
TEST_CASE("execlog logs instructions, memory accesses and register changes", "[plugins]")
{
    std::string log = run_plugins({"libexeclog.so,reg=a1"});
    INFO(log);
    CHECK(has_line(log, "0, 0x80000000, 0x00300293, \"insn00300293\", a1=0x1"));
    CHECK(has_line(log, "0, 0x80000004, 0x12fd, \"insn000012fd\", a1=0x2"));
    CHECK(has_line(log, "0, 0x8000000e, 0x00732023, \"insn00732023\", store 0x100000, a1=0xb"));
    CHECK(has_line(log, "1, 0x80000012, 0x0202b583, \"insn0202b583\", load 0x80001000, a1=0xf"));
    std::string without = run_plugins({"libexeclog.so,mem=off"});
    CHECK(has_line(without, "0, 0x8000000e, 0x00732023, \"insn00732023\""));
}

TEST_CASE("drcov writes the executed blocks in drcov format", "[plugins]")
{
    std::string path = std::string(KEEL_TEST_TMP_DIR) + "/drcov-test.out";
    CHECK(run_plugins({"libdrcov.so,filename=" + path}).empty());
    std::ifstream f(path, std::ios::binary);
    std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    std::string header = "DRCOV VERSION: 2\nDRCOV FLAVOR: drcov\nModule Table: version 2, count 1\n"
                         "Columns: id, base, end, entry, path\n"
                         "  0, 0x0000000000000000, 0xffffffffffffffff, 0x0000000000000000, guest\n"
                         "BB Table: 2 bbs\n";
    REQUIRE(text.size() == header.size() + 16);
    CHECK(text.substr(0, header.size()) == header);
    const unsigned char want[16] = {0x00, 0x00, 0x00, 0x80, 10, 0, 0, 0, 0x0a, 0x00, 0x00, 0x80, 12, 0, 0, 0};
    CHECK(memcmp(text.data() + header.size(), want, 16) == 0);
}

TEST_CASE("every example refuses an unknown argument", "[plugins]")
{
    for (const char *p :
         {"libinsn.so", "libinsn-v1.so", "libbb.so", "libmem.so", "libhotblocks.so", "libhotpages.so",
          "libhowvec.so", "libexeclog.so", "libcache.so", "libdrcov.so", "libtraps.so"}) {
        std::string spec = std::string(p) + ",bogus=1";
        CHECK(run_plugins({spec}) == "install failed: " + spec + "\n");
    }
    CHECK(run_plugins({"libinsn.so,inline=maybe"}) == "install failed: libinsn.so,inline=maybe\n");
    CHECK(run_plugins({"libcache.so,dassoc=3"}) == "install failed: libcache.so,dassoc=3\n");
}
