// SPDX-License-Identifier: MIT
// The fake CPU and the machine the execution-core tests run on.
#include "fake_cpu.h"

#include <catch2/catch.hpp>
#include <cstddef>

#include <keel/module.h>

#include "kernel.h"
#include "tci.h"

// The exec core calls the kernel through keel_services, as inside a module.
KEEL_HIDDEN const KeelServices *keel_services = nullptr;

namespace keel::irtest
{

namespace
{

Rig *g_rig = nullptr;

const KeelIrGlobal kGlobals[] = {
    {"x0", offsetof(FakeEnv, x[0]), KEEL_IR_I64}, {"x1", offsetof(FakeEnv, x[1]), KEEL_IR_I64},
    {"x2", offsetof(FakeEnv, x[2]), KEEL_IR_I64}, {"x3", offsetof(FakeEnv, x[3]), KEEL_IR_I64},
    {"w0", offsetof(FakeEnv, w[0]), KEEL_IR_I32}, {"w1", offsetof(FakeEnv, w[1]), KEEL_IR_I32},
    {"w2", offsetof(FakeEnv, w[2]), KEEL_IR_I32}, {"pc", offsetof(FakeEnv, pc), KEEL_IR_I64},
    {"f0", offsetof(FakeEnv, f0), KEEL_IR_F32},   {"d0", offsetof(FakeEnv, d0), KEEL_IR_F64},
};

FakeEnv &E(void *env)
{
    return *static_cast<FakeEnv *>(env);
}

void stop_helper(void *)
{
    g_rig->core->stop();
}

const KeelIrHelper kStopHelper = {
    "stop", reinterpret_cast<void (*)(void)>(stop_helper), 0, 0, 1, {KEEL_IR_PTR}, 0, {}};

uint64_t fake_tb_flags(void *)
{
    return 0; // MMU index 0
}

void fake_translate(void *env, KeelIrBuilder *b, const KeelIrBuilderOps *o, uint64_t pc, uint64_t,
                    unsigned max_insns)
{
    (void)env;
    g_rig->translations[pc]++;
    g_rig->max_insns = max_insns;
    auto it = g_rig->blocks.find(pc);
    o->insn_start(b, pc, 4, 0);
    if (it != g_rig->blocks.end()) {
        it->second(b, o, pc);
        return;
    }
    KeelIrValue e = o->env(b);
    o->call(b, &kStopHelper, 0, &e, 1);
    o->exit_tb(b);
}

int fake_tlb_fill(void *env, uint64_t vaddr, KeelAccess access, unsigned, int probe, KeelTlbFill *out)
{
    FakeEnv &s = E(env);
    s.tlb_fills++;
    if ((vaddr & ~uint64_t(0xfff)) == s.unmapped_page) {
        if (!probe) {
            s.faults++;
            s.fault_access = access;
            s.fault_vaddr = vaddr;
            s.common.exception = 1;
        }
        return KEEL_ERR;
    }
    out->paddr = vaddr;
    out->prot = KEEL_PROT_READ | KEEL_PROT_WRITE | KEEL_PROT_EXEC;
    out->page_bits = s.page_bits;
    return KEEL_OK;
}

void fake_mem_fault(void *env, uint64_t vaddr, KeelAccess access, unsigned, KeelMemFault kind)
{
    FakeEnv &s = E(env);
    s.faults++;
    s.fault_kind = kind;
    s.fault_access = access;
    s.fault_vaddr = vaddr;
    s.common.exception = 1;
}

void fake_exec_exception(void *env)
{
    FakeEnv &s = E(env);
    s.exceptions++;
    s.exception_pc = s.pc;
    if (g_rig->on_exception) {
        g_rig->on_exception(s);
    } else {
        s.pc = kStopPc;
    }
}

int fake_exec_interrupt(void *env)
{
    FakeEnv &s = E(env);
    s.interrupts++;
    if (g_rig->on_interrupt) g_rig->on_interrupt(s);
    return 0;
}

int fake_has_work(void *env)
{
    return E(env).work;
}

} // namespace

const KeelCpuOps kFakeCpuOps = {
    sizeof(KeelCpuOps),
    "fake",
    kGlobals,
    N_GLOBALS,
    PC,
    2,
    4,
    fake_tb_flags,
    fake_translate,
    fake_tlb_fill,
    fake_mem_fault,
    fake_exec_exception,
    fake_exec_interrupt,
    fake_has_work,
    nullptr,
    nullptr,
    nullptr,
    nullptr,
    {},
    nullptr,
};

Rig *current_rig()
{
    return g_rig;
}

Rig::Rig()
{
    keel_services = kernel().services();
    Registry &reg = kernel().registry();
    static bool ready = false;
    if (!ready) {
        reg.set_search_path({TEST_MODULE_DIR});
        reg.refresh();
        ready = true;
    }
    MachineSpec spec = load_manifest(std::string(IR_TEST_DIR) + "/fake.yaml", {}, {}, reg);
    machine = std::make_unique<Machine>(reg, std::move(spec), nullptr);
    machine->build();
    obj.name = "cpu0";
    obj.path = "/machine/cpu0";
    obj.machine = machine.get();
    obj.state = &env;
    handle = KeelCpuHandle{&obj, &env, &kFakeCpuOps};
    REQUIRE(exec::Core::check_cpus(&handle, 1).empty());
    core = std::make_unique<exec::Core>(&handle, 1, tci::make_engine());
    g_rig = this;
}

Rig::~Rig()
{
    core.reset();
    g_rig = nullptr;
}

int Rig::run_from(uint64_t pc)
{
    env.pc = pc;
    return core->run();
}

uint8_t *Rig::ram(uint64_t paddr)
{
    uint64_t avail = 0;
    uint8_t *p = machine->system_memory().ram_ptr(paddr, &avail, true);
    REQUIRE(p);
    return p;
}

} // namespace keel::irtest
