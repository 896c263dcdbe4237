// SPDX-License-Identifier: MIT
// The tcg accelerator module: registers the "tcg" engine (the shared execution core with the x86-64 JIT).
#include <cinttypes>

#include <keel/module.h>

#include "exec.h"
#include "tcg.h"

namespace
{

using keel::exec::Core;

void *tcg_create(const KeelCpuHandle *cpus, unsigned n_cpus, KeelError *err)
{
    std::string why = Core::check_cpus(cpus, n_cpus);
    if (!why.empty()) {
        keel_services->error_set(err, "tcg: %s", why.c_str());
        return nullptr;
    }
    auto engine = keel::tcg::make_engine(why);
    if (!engine) {
        keel_services->error_set(err, "tcg: %s", why.c_str());
        return nullptr;
    }
    return new Core(cpus, n_cpus, std::move(engine));
}

int tcg_run(void *accel)
{
    return static_cast<Core *>(accel)->run();
}

void tcg_stop(void *accel)
{
    static_cast<Core *>(accel)->stop();
}

void tcg_kick(void *accel, unsigned cpu_index)
{
    static_cast<Core *>(accel)->kick(cpu_index);
}

void tcg_destroy(void *accel)
{
    auto *core = static_cast<Core *>(accel);
    if (keel_services->log_enabled(KEEL_LOG_OUT_ASM)) {
        // The translation cost, with -d out_asm (the time spent writing the log itself is left out).
        keel::tcg::EngineStats s = keel::tcg::engine_stats(core->engine());
        double sec = static_cast<double>(s.compile_ns) / 1e9;
        keel_services->log_mask(
            nullptr, KEEL_LOG_OUT_ASM,
            "tcg: %" PRIu64 " blocks, %" PRIu64 " guest instructions compiled in %.3f s (%.0f "
            "instructions/s), %" PRIu64 " code cache flushes, %zu bytes in use\n",
            s.blocks_compiled, s.insns_compiled, sec,
            sec > 0 ? static_cast<double>(s.insns_compiled) / sec : 0.0, s.cache_flushes, s.cache_used);
    }
    delete core;
}

const KeelAccelOps kTcgOps = {
    sizeof(KeelAccelOps),
    tcg_create,
    tcg_run,
    tcg_stop,
    tcg_kick,
    tcg_destroy,
    {},
    keel::exec::accel_pause,
    keel::exec::accel_resume,
    keel::exec::accel_set_debug,
    keel::exec::accel_code_written,
};

const KeelAccelTypeInfo kTcgType = {
    sizeof(KeelAccelTypeInfo), "tcg", "x86-64 JIT: keel IR compiled to host code", &kTcgOps, {},
};

int tcg_init(KeelRegistrar *reg, KeelError *err)
{
    if (reg->size < offsetof(KeelRegistrar, register_accel) + sizeof reg->register_accel ||
        !reg->register_accel) {
        keel_services->error_set(err, "tcg: this kernel cannot register accelerators");
        return KEEL_ERR;
    }
    return reg->register_accel(reg, &kTcgType, err);
}

} // namespace

KEEL_MODULE("tcg", KEEL_MODULE_ACCEL, "0.1.0", "tcg: the x86-64 JIT for keel IR", "MIT", tcg_init)
