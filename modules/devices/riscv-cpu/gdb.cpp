// SPDX-License-Identifier: MIT
// The hart's debugger hooks (KeelCpuDebugOps): gdb's target description (core, fpu, csr and virtual
// features, register numbers as cpu_read_reg implements them) and a side-effect-free address translation.
#include "disasm.h"
#include "priv.h"

#include <map>
#include <mutex>
#include <string>

namespace keel::rv
{

namespace
{

constexpr unsigned GDB_PC = 32, GDB_F0 = 33, GDB_CSR0 = 65, GDB_PRIV = GDB_CSR0 + 4096;

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
        // The ABI names as the disassembler prints them, but x8 is "fp" to gdb.
        s += reg(i == 8 ? "fp" : gpr_name(i), i, i == 1 ? "code_ptr" : i == 2 || i == 8 ? "data_ptr" : "int");
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
        s += reg(fpr_name(i), GDB_F0 + i, has_d ? "riscv_double" : "ieee_single", "float");
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
        // Named as objdump names it (as gdb does); the ones this hart implements (csr_read_debug answers).
        const char *name = csr_name(csr);
        uint64_t v;
        if (!name || !csr_read_debug(cpu, csr, &v)) continue;
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
