// SPDX-License-Identifier: MIT
// The riscv64 device type: properties, reset, interrupt lines, and the KeelCpuOps an engine drives the hart
// with.
#include "priv.h"

#include "decode.h"
#include "disasm.h"

#include <cctype>
#include <cstdio>
#include <cstring>
#include <string>

#include "translate.h"

namespace keel::rv
{

namespace
{

// gdb's riscv register numbers.
constexpr unsigned GDB_PC = 32, GDB_F0 = 33, GDB_CSR0 = 65, GDB_PRIV = GDB_CSR0 + 4096;

const char *const kMmuModes[] = {"bare", "sv39", "sv48", nullptr};
constexpr uint32_t kMmuModeSatp[] = {SATP_BARE, SATP_SV39, SATP_SV48};

// The device lines' bits in mip; they mirror wires, so a reset of the hart keeps them.
constexpr uint64_t LINE_BITS = MIP_MSIP | MIP_MTIP | MIP_MEIP | MIP_SEIP;

// Parse "rv64" + single-letter extensions (g = imafd) + "_name" multi-letter ones into misa bits.
bool parse_isa(const char *isa, uint64_t *misa, bool *sstc, std::string *why)
{
    std::string s = isa ? isa : "";
    for (char &c : s)
        c = char(std::tolower(static_cast<unsigned char>(c)));
    if (s.rfind("rv64", 0) != 0) return *why = "must start with rv64", false;
    uint64_t bits = 0;
    size_t i = 4;
    for (; i < s.size() && s[i] != '_'; i++) {
        char c = s[i];
        if (c == 'g')
            bits |= misa_bit('i') | misa_bit('m') | misa_bit('a') | misa_bit('f') | misa_bit('d');
        else if (std::strchr("imafdc", c))
            bits |= misa_bit(c);
        else
            return *why = std::string("unsupported extension '") + c + "'", false;
    }
    if (!(bits & misa_bit('i'))) return *why = "the base ISA (i or g) is missing", false;
    if ((bits & misa_bit('d')) && !(bits & misa_bit('f'))) return *why = "d needs f", false;
    while (i < s.size()) {
        size_t end = s.find('_', i + 1);
        std::string ext = s.substr(i + 1, end == std::string::npos ? std::string::npos : end - i - 1);
        if (ext == "sstc")
            *sstc = true;
        else if (ext != "zicsr" && ext != "zifencei" && ext != "zba" && ext != "zbb" && ext != "zbs" &&
                 ext != "zicond")
            return *why = "unsupported extension '" + ext + "'", false;
        i = end == std::string::npos ? s.size() : end;
    }
    *misa = (2ull << 62) | bits | misa_bit('s') | misa_bit('u');
    return true;
}

template <uint64_t Bit> void irq_line(void *opaque, unsigned, int level)
{
    auto *cpu = static_cast<RvCpu *>(opaque);
    if (level)
        cpu->mip.fetch_or(Bit);
    else
        cpu->mip.fetch_and(~Bit);
    request_exit(cpu);
    if (keel_services->cpu_kick) keel_services->cpu_kick(cpu->obj);
}

int cpu_init(KeelObject *dev, void *state, KeelError *)
{
    static_cast<RvCpu *>(state)->obj = dev;
    return KEEL_OK;
}

int cpu_realize(KeelObject *dev, void *state, KeelError *err)
{
    auto *cpu = static_cast<RvCpu *>(state);
    cpu->obj = dev;
    std::string why;
    uint64_t misa = 0;
    bool sstc = false;
    if (!parse_isa(cpu->isa, &misa, &sstc, &why)) {
        keel_services->error_set(err, "isa \"%s\": %s", cpu->isa ? cpu->isa : "", why.c_str());
        return KEEL_ERR;
    }
    cpu->misa = misa;
    cpu->sstc = cpu->sstc || sstc;
    // The property stores the index of the enum value; the hart keeps the satp.MODE it stands for.
    uint32_t idx = cpu->mmu_prop;
    if (idx >= KEEL_ARRAY_SIZE(kMmuModeSatp)) {
        keel_services->error_set(err, "mmu: bad mode index %u", idx);
        return KEEL_ERR;
    }
    cpu->mmu_mode = kMmuModeSatp[idx];
    if (!cpu->timebase_freq) {
        keel_services->error_set(err, "timebase-frequency must not be 0");
        return KEEL_ERR;
    }
    cpu->mhartid = cpu->common.cpu_index;
    static const struct {
        const char *name;
        KeelIrqHandler handler;
    } lines[] = {{"msi", irq_line<MIP_MSIP>},
                 {"mti", irq_line<MIP_MTIP>},
                 {"mei", irq_line<MIP_MEIP>},
                 {"sei", irq_line<MIP_SEIP>}};
    for (auto &l : lines)
        if (keel_services->irq_init_inputs(dev, l.name, 1, l.handler, cpu, err) != KEEL_OK) return KEEL_ERR;
    if (cpu->sstc)
        cpu->stimecmp_timer = keel_services->timer_new(dev, KEEL_CLOCK_VIRTUAL, stimecmp_timer_fired, cpu);
    return KEEL_OK;
}

void cpu_unrealize(KeelObject *, void *state)
{
    auto *cpu = static_cast<RvCpu *>(state);
    if (cpu->stimecmp_timer) keel_services->timer_free(cpu->stimecmp_timer);
    cpu->stimecmp_timer = nullptr;
}

void cpu_reset(KeelObject *, void *state, KeelResetType)
{
    auto *cpu = static_cast<RvCpu *>(state);
    // Guest-visible state to zero, except what the spec (and QEMU) give a value.
    std::memset(cpu->x, 0, sizeof cpu->x);
    std::memset(cpu->f, 0, sizeof cpu->f);
    cpu->res_addr = ~0ull;
    cpu->res_val = cpu->instret = 0;
    cpu->fflags = cpu->frm = 0;
    cpu->priv = PRV_M;
    cpu->pc = cpu->resetvec;
    // MIE = MPRV = 0; MPP = U as QEMU does (the spec leaves it open); XLEN 64 in S and U.
    cpu->mstatus = MSTATUS_XL64;
    cpu->medeleg = cpu->mideleg = cpu->mie = 0;
    cpu->mip.fetch_and(LINE_BITS);
    cpu->mip_sw = 0;
    cpu->mtvec = cpu->mscratch = cpu->mepc = cpu->mcause = cpu->mtval = 0;
    cpu->stvec = cpu->sscratch = cpu->sepc = cpu->scause = cpu->stval = 0;
    cpu->satp = 0;
    cpu->mcounteren = cpu->scounteren = cpu->mcountinhibit = 0;
    cpu->menvcfg = cpu->senvcfg = 0;
    cpu->stimecmp = 0;
    std::memset(cpu->pmpcfg, 0, sizeof cpu->pmpcfg);
    std::memset(cpu->pmpaddr, 0, sizeof cpu->pmpaddr);
    cpu->exc_cause = cpu->exc_tval = 0;
    cpu->common.exception = 0;
    cpu->common.halted = 0;
    cpu->mhartid = cpu->common.cpu_index;
    if (cpu->stimecmp_timer) keel_services->timer_del(cpu->stimecmp_timer);
    flush_tlb(cpu);
}

uint64_t cpu_tb_flags(void *env)
{
    auto *cpu = static_cast<RvCpu *>(env);
    uint64_t priv = cpu->priv;
    uint64_t data = priv;
    if (priv == PRV_M && (cpu->mstatus & MSTATUS_MPRV))
        data = (cpu->mstatus & MSTATUS_MPP) >> MSTATUS_MPP_SHIFT;
    return (priv << TBF_FETCH_SHIFT) | (data << TBF_DATA_SHIFT) | (uint64_t(mstatus_fs(cpu)) << TBF_FS_SHIFT);
}

void cpu_mem_fault(void *env, uint64_t vaddr, KeelAccess access, unsigned, KeelMemFault kind)
{
    auto *cpu = static_cast<RvCpu *>(env);
    uint64_t cause;
    if (kind == KEEL_FAULT_UNALIGNED)
        cause = access == KEEL_ACCESS_WRITE  ? EXC_STORE_MISALIGNED
                : access == KEEL_ACCESS_EXEC ? EXC_INSN_MISALIGNED
                                             : EXC_LOAD_MISALIGNED;
    else
        cause = access == KEEL_ACCESS_WRITE  ? EXC_STORE_ACCESS
                : access == KEEL_ACCESS_EXEC ? EXC_INSN_ACCESS
                                             : EXC_LOAD_ACCESS;
    raise_exception(cpu, cause, vaddr);
}

size_t cpu_disas(void *, uint64_t pc, const uint8_t *bytes, size_t len, char *buf, size_t bufsize)
{
    if (len < 2) return 0;
    uint32_t bits = uint32_t(bytes[0]) | uint32_t(bytes[1]) << 8;
    if ((bits & 3) == 3) {
        if (len < 4) return 0;
        bits |= uint32_t(bytes[2]) << 16 | uint32_t(bytes[3]) << 24;
    }
    Insn insn = decode(bits);
    std::string text = disasm(insn, pc);
    if (bufsize) std::snprintf(buf, bufsize, "%s", text.c_str());
    return insn.len;
}

size_t cpu_dump_state(void *env, char *buf, size_t bufsize)
{
    auto *cpu = static_cast<RvCpu *>(env);
    std::string out;
    char line[160];
    auto reg = [&](const char *name, uint64_t v) {
        std::snprintf(line, sizeof line, " %-8s %016llx\n", name, (unsigned long long)v);
        out += line;
    };
    reg("pc", cpu->pc);
    reg("mhartid", cpu->mhartid);
    reg("mstatus", cpu->mstatus);
    reg("mip", effective_mip(cpu));
    reg("mie", cpu->mie);
    reg("mideleg", cpu->mideleg);
    reg("medeleg", cpu->medeleg);
    reg("mtvec", cpu->mtvec);
    reg("stvec", cpu->stvec);
    reg("mepc", cpu->mepc);
    reg("sepc", cpu->sepc);
    reg("mcause", cpu->mcause);
    reg("scause", cpu->scause);
    reg("mtval", cpu->mtval);
    reg("stval", cpu->stval);
    reg("mscratch", cpu->mscratch);
    reg("sscratch", cpu->sscratch);
    reg("satp", cpu->satp);
    std::snprintf(line, sizeof line, " %-8s %c\n", "priv",
                  cpu->priv == PRV_M   ? 'M'
                  : cpu->priv == PRV_S ? 'S'
                                       : 'U');
    out += line;
    for (unsigned i = 0; i < 32; i++) {
        char name[12];
        std::snprintf(name, sizeof name, "x%u/%s", i, gpr_name(i));
        std::snprintf(line, sizeof line, " %-8s %016llx%s", name, (unsigned long long)cpu->x[i],
                      i % 4 == 3 ? "\n" : "");
        out += line;
    }
    if (mstatus_fs(cpu) != FS_OFF) {
        for (unsigned i = 0; i < 32; i++) {
            char name[12];
            std::snprintf(name, sizeof name, "f%u/%s", i, fpr_name(i));
            std::snprintf(line, sizeof line, " %-8s %016llx%s", name, (unsigned long long)cpu->f[i],
                          i % 4 == 3 ? "\n" : "");
            out += line;
        }
        std::snprintf(line, sizeof line, " %-8s %02x %-8s %x\n", "fflags", cpu->fflags, "frm", cpu->frm);
        out += line;
    }
    if (bufsize) std::snprintf(buf, bufsize, "%s", out.c_str());
    return out.size() + 1;
}

unsigned cpu_read_reg(void *env, unsigned n, uint8_t *buf, size_t bufsize)
{
    auto *cpu = static_cast<RvCpu *>(env);
    uint64_t v;
    if (n < 32)
        v = cpu->x[n];
    else if (n == GDB_PC)
        v = cpu->pc;
    else if (n < GDB_CSR0)
        v = cpu->f[n - GDB_F0];
    else if (n == GDB_PRIV)
        v = cpu->priv;
    else if (!csr_read_debug(cpu, n - GDB_CSR0, &v))
        return 0;
    if (bufsize < 8) return 0;
    for (unsigned i = 0; i < 8; i++)
        buf[i] = uint8_t(v >> (8 * i));
    return 8;
}

unsigned cpu_write_reg(void *env, unsigned n, const uint8_t *buf, size_t len)
{
    auto *cpu = static_cast<RvCpu *>(env);
    if (len < 8) return 0;
    uint64_t v = 0;
    for (unsigned i = 0; i < 8; i++)
        v |= uint64_t(buf[i]) << (8 * i);
    if (n < 32) {
        if (n) cpu->x[n] = v;
    } else if (n == GDB_PC) {
        cpu->pc = v;
    } else if (n < GDB_CSR0) {
        cpu->f[n - GDB_F0] = v;
    } else if (n == GDB_PRIV) {
        if (v == 2 || v > PRV_M) return 0;
        cpu->priv = uint32_t(v);
    } else if (!csr_write_debug(cpu, n - GDB_CSR0, v)) {
        return 0;
    }
    return 8;
}

const KeelCpuOps kCpuOps = {
    sizeof(KeelCpuOps),
    "riscv:rv64",
    kGlobals,
    NUM_GLOBALS,
    GLOBAL_PC,
    MMU_COUNT,
    4,
    cpu_tb_flags,
    translate,
    cpu_tlb_fill,
    cpu_mem_fault,
    cpu_exec_exception,
    cpu_exec_interrupt,
    cpu_has_work,
    cpu_disas,
    cpu_dump_state,
    cpu_read_reg,
    cpu_write_reg,
    {},
    &kCpuDebugOps,
};

const KeelPropertyInfo kProps[] = {
    KEEL_PROP_STRING("isa", RvCpu, isa, "rv64gc",
                     "ISA string: rv64gc or rv64imafdc[c], optionally _zba_zbb_zbs_zicond and _sstc"),
    KEEL_PROP_ENUM("mmu", RvCpu, mmu_prop, "sv48", kMmuModes, "highest address translation mode in satp"),
    KEEL_PROP_UINT("resetvec", RvCpu, resetvec, "0x1000", "pc after reset"),
    KEEL_PROP_UINT("timebase-frequency", RvCpu, timebase_freq, "10000000", "frequency of the time CSR (Hz)"),
    KEEL_PROP_BOOL("pmp", RvCpu, pmp_enabled, "true",
                   "16 PMP entries (S/U accesses then need a matching entry)"),
    KEEL_PROP_BOOL("sstc", RvCpu, sstc, "false", "Sstc (stimecmp); also enabled by _sstc in isa"),
};

const KeelDeviceOps kDevOps = {
    sizeof(KeelDeviceOps), cpu_init, cpu_realize, cpu_reset, cpu_unrealize, nullptr, nullptr,
};

// The device-tree ISA string: the base and single-letter extensions from misa, then the multi-letter
// ones this hart always implements, then the optional ones it was configured with.
std::string dt_isa(const RvCpu &cpu)
{
    std::string s = "rv64";
    for (char c : std::string("imafdc"))
        if (cpu.misa & misa_bit(c)) s += c;
    s += "_zicsr_zifencei_zba_zbb_zbs_zicond";
    if (cpu.sstc) s += "_sstc";
    return s;
}

int cpu_fdt_populate(KeelObject *, void *state, KeelFdt *fdt, KeelError *err)
{
    const auto *cpu = static_cast<const RvCpu *>(state);
    const KeelServices *k = keel_services;
    static const char *const kMmuTypes[] = {nullptr, "riscv,sv39", "riscv,sv48"};
    static const char *const kIntcCompatible[] = {"riscv,cpu-intc", nullptr};
    std::string isa = dt_isa(*cpu);
    int rc = k->fdt_prop_string(fdt, "riscv,isa", isa.c_str());
    if (rc == KEEL_OK && cpu->mmu_prop > 0 && cpu->mmu_prop < KEEL_ARRAY_SIZE(kMmuTypes))
        rc = k->fdt_prop_string(fdt, "mmu-type", kMmuTypes[cpu->mmu_prop]);
    // The hart-local interrupt controller: devices wired to this hart's inputs (cpu0.mti) point here.
    if (rc == KEEL_OK) rc = k->fdt_begin_node(fdt, "interrupt-controller");
    if (rc == KEEL_OK) rc = k->fdt_set_interrupt_node(fdt, 1);
    if (rc == KEEL_OK) rc = k->fdt_prop_strings(fdt, "compatible", kIntcCompatible);
    if (rc == KEEL_OK) rc = k->fdt_end_node(fdt);
    if (rc != KEEL_OK) k->error_set(err, "cannot write the hart's node");
    return rc;
}

// The interrupt number of each input group: the bit it sets in mip.
unsigned cpu_irq_specifier(KeelObject *, void *, const char *group, unsigned, uint32_t cells[4])
{
    static const struct {
        const char *group;
        uint32_t irq;
    } kIrqs[] = {{"msi", IRQ_MSI}, {"mti", IRQ_MTI}, {"mei", IRQ_MEI}, {"sei", IRQ_SEI}};
    for (const auto &i : kIrqs)
        if (std::strcmp(group, i.group) == 0) {
            cells[0] = i.irq;
            return 1;
        }
    return 0;
}

const char *const kCompatible[] = {"riscv", nullptr};

const KeelFdtInfo kFdt = {
    sizeof(KeelFdtInfo), "cpu", kCompatible, 0, 1, 0, cpu_fdt_populate, nullptr, cpu_irq_specifier, {},
};

const KeelDeviceTypeInfo kType = {
    sizeof(KeelDeviceTypeInfo),
    "riscv64",
    "RISC-V RV64GC hart (M/S/U, Sv39/Sv48, PMP)",
    sizeof(RvCpu),
    kProps,
    KEEL_ARRAY_SIZE(kProps),
    &kDevOps,
    &kCpuOps,
    &kFdt,
    {},
};

int module_init(KeelRegistrar *reg, KeelError *err)
{
    return reg->register_device(reg, &kType, err);
}

} // namespace

} // namespace keel::rv

KEEL_MODULE("riscv-cpu", KEEL_MODULE_DEVICE, "1.0.0", "RISC-V RV64GC hart", "MIT", keel::rv::module_init)
