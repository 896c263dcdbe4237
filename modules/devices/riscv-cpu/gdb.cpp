// SPDX-License-Identifier: MIT
// The hart's debugger hooks (KeelCpuDebugOps): gdb's target description (core, fpu, csr and virtual
// features, register numbers as cpu_read_reg implements them) and a side-effect-free address translation.
#include "priv.h"

#include <cstdio>
#include <map>
#include <mutex>
#include <string>

namespace keel::rv
{

namespace
{

constexpr unsigned GDB_PC = 32, GDB_F0 = 33, GDB_CSR0 = 65, GDB_PRIV = GDB_CSR0 + 4096;

// gdb's names of x0..x31 (the ABI names; gdb calls x8 "fp").
const char *const kXNames[32] = {"zero", "ra", "sp", "gp", "tp",  "t0",  "t1", "t2", "fp", "s1", "a0",
                                 "a1",   "a2", "a3", "a4", "a5",  "a6",  "a7", "s2", "s3", "s4", "s5",
                                 "s6",   "s7", "s8", "s9", "s10", "s11", "t3", "t4", "t5", "t6"};
const char *const kFNames[32] = {"ft0", "ft1", "ft2",  "ft3",  "ft4", "ft5", "ft6",  "ft7",
                                 "fs0", "fs1", "fa0",  "fa1",  "fa2", "fa3", "fa4",  "fa5",
                                 "fa6", "fa7", "fs2",  "fs3",  "fs4", "fs5", "fs6",  "fs7",
                                 "fs8", "fs9", "fs10", "fs11", "ft8", "ft9", "ft10", "ft11"};

// The CSR names gdb knows (its riscv numbering is 65 + the CSR number); the ones this hart implements
// (csr_read_debug answers) go into the csr feature. fflags, frm and fcsr are in the fpu feature.
std::string csr_name(unsigned csr)
{
    static const std::map<unsigned, const char *> kNames = {
        {CSR_CYCLE, "cycle"},
        {CSR_TIME, "time"},
        {CSR_INSTRET, "instret"},
        {CSR_SSTATUS, "sstatus"},
        {CSR_SIE, "sie"},
        {CSR_STVEC, "stvec"},
        {CSR_SCOUNTEREN, "scounteren"},
        {CSR_SENVCFG, "senvcfg"},
        {CSR_SSCRATCH, "sscratch"},
        {CSR_SEPC, "sepc"},
        {CSR_SCAUSE, "scause"},
        {CSR_STVAL, "stval"},
        {CSR_SIP, "sip"},
        {CSR_STIMECMP, "stimecmp"},
        {CSR_SATP, "satp"},
        {CSR_MSTATUS, "mstatus"},
        {CSR_MISA, "misa"},
        {CSR_MEDELEG, "medeleg"},
        {CSR_MIDELEG, "mideleg"},
        {CSR_MIE, "mie"},
        {CSR_MTVEC, "mtvec"},
        {CSR_MCOUNTEREN, "mcounteren"},
        {CSR_MENVCFG, "menvcfg"},
        {CSR_MCOUNTINHIBIT, "mcountinhibit"},
        {CSR_MSCRATCH, "mscratch"},
        {CSR_MEPC, "mepc"},
        {CSR_MCAUSE, "mcause"},
        {CSR_MTVAL, "mtval"},
        {CSR_MIP, "mip"},
        {CSR_TSELECT, "tselect"},
        {CSR_TDATA1, "tdata1"},
        {CSR_TDATA1 + 1, "tdata2"},
        {CSR_TDATA3, "tdata3"},
        {CSR_MCYCLE, "mcycle"},
        {CSR_MINSTRET, "minstret"},
        {CSR_MVENDORID, "mvendorid"},
        {CSR_MARCHID, "marchid"},
        {CSR_MIMPID, "mimpid"},
        {CSR_MHARTID, "mhartid"},
        {CSR_MCONFIGPTR, "mconfigptr"},
    };
    auto it = kNames.find(csr);
    if (it != kNames.end()) return it->second;
    char buf[24];
    if (csr >= CSR_HPMCOUNTER3 && csr <= CSR_HPMCOUNTER31)
        std::snprintf(buf, sizeof buf, "hpmcounter%u", csr - CSR_CYCLE);
    else if (csr >= CSR_MHPMCOUNTER3 && csr <= CSR_MHPMCOUNTER31)
        std::snprintf(buf, sizeof buf, "mhpmcounter%u", csr - CSR_MCYCLE);
    else if (csr >= CSR_MHPMEVENT3 && csr <= CSR_MHPMEVENT31)
        std::snprintf(buf, sizeof buf, "mhpmevent%u", csr - CSR_MCOUNTINHIBIT);
    else if (csr >= CSR_PMPCFG0 && csr <= CSR_PMPCFG15)
        std::snprintf(buf, sizeof buf, "pmpcfg%u", csr - CSR_PMPCFG0);
    else if (csr >= CSR_PMPADDR0 && csr <= CSR_PMPADDR63)
        std::snprintf(buf, sizeof buf, "pmpaddr%u", csr - CSR_PMPADDR0);
    else
        return "";
    return buf;
}

std::string reg(const std::string &name, unsigned regnum, const char *type, const char *group = nullptr)
{
    std::string s = "  <reg name=\"" + name + "\" bitsize=\"64\" regnum=\"" + std::to_string(regnum) +
                    "\" type=\"" + type + "\"";
    if (group) s += std::string(" group=\"") + group + "\"";
    return s + "/>\n";
}

std::string core_xml()
{
    std::string s = "<?xml version=\"1.0\"?>\n<!DOCTYPE feature SYSTEM \"gdb-target.dtd\">\n"
                    "<feature name=\"org.gnu.gdb.riscv.cpu\">\n";
    for (unsigned i = 0; i < 32; i++)
        s += reg(kXNames[i], i, i == 1 ? "code_ptr" : i == 2 || i == 8 ? "data_ptr" : "int");
    s += reg("pc", GDB_PC, "code_ptr");
    return s + "</feature>\n";
}

std::string fpu_xml(bool has_d)
{
    std::string s = "<?xml version=\"1.0\"?>\n<!DOCTYPE feature SYSTEM \"gdb-target.dtd\">\n"
                    "<feature name=\"org.gnu.gdb.riscv.fpu\">\n";
    // As QEMU: with D a register holds a double or a NaN-boxed single.
    s += "  <union id=\"riscv_double\">\n    <field name=\"float\" type=\"ieee_single\"/>\n"
         "    <field name=\"double\" type=\"ieee_double\"/>\n  </union>\n";
    for (unsigned i = 0; i < 32; i++)
        s += reg(kFNames[i], GDB_F0 + i, has_d ? "riscv_double" : "ieee_single", "float");
    s += reg("fflags", GDB_CSR0 + CSR_FFLAGS, "int", "float");
    s += reg("frm", GDB_CSR0 + CSR_FRM, "int", "float");
    s += reg("fcsr", GDB_CSR0 + CSR_FCSR, "int", "float");
    return s + "</feature>\n";
}

std::string csr_xml(RvCpu *cpu)
{
    std::string s = "<?xml version=\"1.0\"?>\n<!DOCTYPE feature SYSTEM \"gdb-target.dtd\">\n"
                    "<feature name=\"org.gnu.gdb.riscv.csr\">\n";
    for (unsigned csr = 0; csr < 4096; csr++) {
        if (csr == CSR_FFLAGS || csr == CSR_FRM || csr == CSR_FCSR || csr == CSR_SEED) continue;
        std::string name = csr_name(csr);
        uint64_t v;
        if (name.empty() || !csr_read_debug(cpu, csr, &v)) continue;
        s += reg(name, GDB_CSR0 + csr, "int", "csr");
    }
    return s + "</feature>\n";
}

std::string virtual_xml()
{
    return "<?xml version=\"1.0\"?>\n<!DOCTYPE feature SYSTEM \"gdb-target.dtd\">\n"
           "<feature name=\"org.gnu.gdb.riscv.virtual\">\n" +
           reg("priv", GDB_PRIV, "int", "system") + "</feature>\n";
}

std::string target_xml(bool has_fpu)
{
    std::string s = "<?xml version=\"1.0\"?>\n<!DOCTYPE target SYSTEM \"gdb-target.dtd\">\n<target>\n"
                    "  <architecture>riscv:rv64</architecture>\n"
                    "  <xi:include href=\"riscv-64bit-cpu.xml\"/>\n";
    if (has_fpu) s += "  <xi:include href=\"riscv-64bit-fpu.xml\"/>\n";
    s += "  <xi:include href=\"riscv-64bit-csr.xml\"/>\n"
         "  <xi:include href=\"riscv-64bit-virtual.xml\"/>\n</target>\n";
    return s;
}

// The files of each hart, built on first use (they depend on its ISA and options); they live as long as
// the process, so the pointers stay valid as long as the hart.
struct XmlFiles {
    std::map<std::string, std::string> files;
};
std::mutex g_xml_lock;
std::map<const void *, XmlFiles> g_xml;

const char *gdb_xml(void *env, const char *annex)
{
    auto *cpu = static_cast<RvCpu *>(env);
    if (!annex) return nullptr;
    std::lock_guard<std::mutex> g(g_xml_lock);
    XmlFiles &x = g_xml[env];
    if (x.files.empty()) {
        bool has_fpu = has_ext(cpu, 'f');
        x.files["target.xml"] = target_xml(has_fpu);
        x.files["riscv-64bit-cpu.xml"] = core_xml();
        if (has_fpu) x.files["riscv-64bit-fpu.xml"] = fpu_xml(has_ext(cpu, 'd'));
        x.files["riscv-64bit-csr.xml"] = csr_xml(cpu);
        x.files["riscv-64bit-virtual.xml"] = virtual_xml();
    }
    auto it = x.files.find(annex);
    return it == x.files.end() ? nullptr : it->second.c_str();
}

int debug_translate(void *env, uint64_t vaddr, uint64_t *paddr)
{
    return cpu_debug_translate(static_cast<RvCpu *>(env), vaddr, paddr) ? 0 : -1;
}

} // namespace

const KeelCpuDebugOps kCpuDebugOps = {
    sizeof(KeelCpuDebugOps), gdb_xml, GDB_PC + 1, GDB_PC, debug_translate, {},
};

} // namespace keel::rv
