// SPDX-License-Identifier: MIT
// The tci accelerator module: registers the "tci" engine (the shared execution core with the tci
// interpreter).
#include <keel/module.h>

#include "exec.h"
#include "tci.h"

namespace
{

using keel::exec::Core;

void *tci_create(const KeelCpuHandle *cpus, unsigned n_cpus, KeelError *err)
{
    std::string why = Core::check_cpus(cpus, n_cpus);
    if (!why.empty()) {
        keel_services->error_set(err, "tci: %s", why.c_str());
        return nullptr;
    }
    return new Core(cpus, n_cpus, keel::tci::make_engine());
}

int tci_run(void *accel)
{
    return static_cast<Core *>(accel)->run();
}

void tci_stop(void *accel)
{
    static_cast<Core *>(accel)->stop();
}

void tci_kick(void *accel, unsigned cpu_index)
{
    static_cast<Core *>(accel)->kick(cpu_index);
}

void tci_destroy(void *accel)
{
    delete static_cast<Core *>(accel);
}

const KeelAccelOps kTciOps = {
    sizeof(KeelAccelOps),
    tci_create,
    tci_run,
    tci_stop,
    tci_kick,
    tci_destroy,
    {},
    keel::exec::accel_pause,
    keel::exec::accel_resume,
    keel::exec::accel_set_debug,
    keel::exec::accel_code_written,
};

const KeelAccelTypeInfo kTciType = {
    sizeof(KeelAccelTypeInfo), "tci", "portable IR interpreter (helpers through libffi)", &kTciOps, {},
};

int tci_init(KeelRegistrar *reg, KeelError *err)
{
    if (reg->size < offsetof(KeelRegistrar, register_accel) + sizeof reg->register_accel ||
        !reg->register_accel) {
        keel_services->error_set(err, "tci: this kernel cannot register accelerators");
        return KEEL_ERR;
    }
    return reg->register_accel(reg, &kTciType, err);
}

} // namespace

KEEL_MODULE("tci", KEEL_MODULE_ACCEL, "0.1.0", "tci: the portable keel IR interpreter", "MIT", tci_init)
