// SPDX-License-Identifier: MIT
// Guest images: ELF64 (RISC-V) executables and raw binaries, read, checked and written into a machine.
#include "loader.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <elf.h>
#include <fstream>

#include "error.h"
#include "util.h"

namespace keel
{

namespace
{

std::string range(uint64_t first, uint64_t size)
{
    return strprintf("0x%llx..0x%llx", static_cast<unsigned long long>(first),
                     static_cast<unsigned long long>(first + size));
}

const char *machine_name(unsigned m)
{
    switch (m) {
    case EM_386:
        return "x86";
    case EM_X86_64:
        return "x86-64";
    case EM_ARM:
        return "ARM";
    case EM_AARCH64:
        return "AArch64";
    case EM_MIPS:
        return "MIPS";
    case EM_PPC64:
        return "PowerPC64";
    case kElfMachineRiscv:
        return "RISC-V";
    default:
        return "unknown";
    }
}

// Bounds-checked views of the file: nothing read from it is trusted.
class Reader
{
  public:
    Reader(const std::string &name, const std::vector<uint8_t> &b) : name_(name), b_(b) {}

    bool fits(uint64_t off, uint64_t len) const { return off <= b_.size() && len <= b_.size() - off; }
    template <class T> T get(uint64_t off, const char *what) const
    {
        if (!fits(off, sizeof(T))) fail(std::string(what) + " is past the end of the file (truncated?)");
        T v;
        std::memcpy(&v, b_.data() + off, sizeof v);
        return v;
    }
    [[noreturn]] void fail(const std::string &msg) const { throw Error(name_ + ": " + msg); }

  private:
    const std::string &name_;
    const std::vector<uint8_t> &b_;
};

void read_symbols(const Reader &r, const std::vector<uint8_t> &b, const Elf64_Ehdr &eh, GuestImage &img)
{
    if (eh.e_shoff == 0 || eh.e_shnum == 0) return; // stripped: no symbols, which is fine
    if (eh.e_shentsize != sizeof(Elf64_Shdr))
        r.fail(strprintf("section header entries are %u bytes, not %zu", eh.e_shentsize, sizeof(Elf64_Shdr)));
    if (!r.fits(eh.e_shoff, uint64_t{eh.e_shnum} * sizeof(Elf64_Shdr)))
        r.fail("section headers are past the end of the file (truncated?)");
    auto shdr = [&](unsigned i) {
        return r.get<Elf64_Shdr>(eh.e_shoff + uint64_t{i} * sizeof(Elf64_Shdr), "a section header");
    };
    // Global symbols win over local ones of the same name.
    std::map<std::string, bool> is_global;
    for (unsigned i = 0; i < eh.e_shnum; ++i) {
        Elf64_Shdr sh = shdr(i);
        if (sh.sh_type != SHT_SYMTAB) continue;
        if (sh.sh_entsize != sizeof(Elf64_Sym))
            r.fail(strprintf("symbol table (section %u) has %llu-byte entries, not %zu", i,
                             static_cast<unsigned long long>(sh.sh_entsize), sizeof(Elf64_Sym)));
        if (!r.fits(sh.sh_offset, sh.sh_size))
            r.fail(strprintf("symbol table (section %u) is past the end of the file (truncated?)", i));
        if (sh.sh_link >= eh.e_shnum)
            r.fail(strprintf("symbol table (section %u) links to section %u, which does not exist", i,
                             sh.sh_link));
        Elf64_Shdr st = shdr(sh.sh_link);
        if (st.sh_type != SHT_STRTAB)
            r.fail(strprintf("symbol table (section %u) links to section %u, which is not a string table", i,
                             sh.sh_link));
        if (!r.fits(st.sh_offset, st.sh_size))
            r.fail(
                strprintf("string table (section %u) is past the end of the file (truncated?)", sh.sh_link));
        const char *strtab = reinterpret_cast<const char *>(b.data() + st.sh_offset);
        uint64_t n = sh.sh_size / sizeof(Elf64_Sym);
        for (uint64_t k = 1; k < n; ++k) { // entry 0 is the null symbol
            Elf64_Sym s = r.get<Elf64_Sym>(sh.sh_offset + k * sizeof(Elf64_Sym), "a symbol");
            unsigned type = ELF64_ST_TYPE(s.st_info);
            if (s.st_shndx == SHN_UNDEF || s.st_name == 0) continue;
            if (type != STT_NOTYPE && type != STT_OBJECT && type != STT_FUNC) continue;
            if (s.st_name >= st.sh_size)
                r.fail(strprintf("symbol %llu has a name outside its string table",
                                 static_cast<unsigned long long>(k)));
            const char *name = strtab + s.st_name;
            const void *nul = std::memchr(name, 0, st.sh_size - s.st_name);
            if (!nul)
                r.fail(strprintf("symbol %llu has an unterminated name", static_cast<unsigned long long>(k)));
            std::string nm(name, static_cast<const char *>(nul) - name);
            bool global = ELF64_ST_BIND(s.st_info) != STB_LOCAL;
            auto it = is_global.find(nm);
            if (it != is_global.end() && (it->second || !global)) continue; // keep the first global
            is_global[nm] = global;
            img.symbols[nm] = s.st_value;
        }
    }
}

GuestImage parse_elf(const std::string &name, std::vector<uint8_t> bytes, uint16_t machine)
{
    GuestImage img;
    img.file = name;
    img.elf = true;
    img.bytes = std::move(bytes);
    const std::vector<uint8_t> &b = img.bytes;
    Reader r(name, b);
    if (b.size() < EI_NIDENT) r.fail("truncated ELF header");
    switch (b[EI_CLASS]) {
    case ELFCLASS64:
        break;
    case ELFCLASS32:
        r.fail("is a 32-bit ELF file (ELFCLASS32); keel loads 64-bit (ELFCLASS64) images");
    default:
        r.fail(strprintf("invalid ELF class %u", b[EI_CLASS]));
    }
    if (b[EI_DATA] == ELFDATA2MSB) r.fail("is a big-endian ELF file; RISC-V images are little-endian");
    if (b[EI_DATA] != ELFDATA2LSB) r.fail(strprintf("invalid ELF data encoding %u", b[EI_DATA]));
    if (b[EI_VERSION] != EV_CURRENT) r.fail(strprintf("unsupported ELF version %u", b[EI_VERSION]));
    if (b.size() < sizeof(Elf64_Ehdr)) r.fail("truncated ELF header");
    Elf64_Ehdr eh = r.get<Elf64_Ehdr>(0, "the ELF header");
    if (eh.e_machine != machine)
        r.fail(strprintf("is an ELF file for %s (machine %u), not for %s (machine %u)",
                         machine_name(eh.e_machine), eh.e_machine, machine_name(machine), machine));
    if (eh.e_type != ET_EXEC)
        r.fail(strprintf("is not an executable (ELF type %u: %s); link it into a static executable",
                         eh.e_type,
                         eh.e_type == ET_REL   ? "relocatable object"
                         : eh.e_type == ET_DYN ? "shared object or position-independent executable"
                                               : "not loadable"));
    if (eh.e_phnum == 0) r.fail("has no program headers, so nothing to load");
    if (eh.e_phnum == PN_XNUM) r.fail("has too many program headers");
    if (eh.e_phentsize != sizeof(Elf64_Phdr))
        r.fail(strprintf("program header entries are %u bytes, not %zu", eh.e_phentsize, sizeof(Elf64_Phdr)));
    if (!r.fits(eh.e_phoff, uint64_t{eh.e_phnum} * sizeof(Elf64_Phdr)))
        r.fail("program headers are past the end of the file (truncated?)");
    img.header_end =
        std::max<uint64_t>(sizeof(Elf64_Ehdr), eh.e_phoff + uint64_t{eh.e_phnum} * sizeof(Elf64_Phdr));
    for (unsigned i = 0; i < eh.e_phnum; ++i) {
        Elf64_Phdr ph = r.get<Elf64_Phdr>(eh.e_phoff + uint64_t{i} * sizeof(Elf64_Phdr), "a program header");
        if (ph.p_type != PT_LOAD || ph.p_memsz == 0) continue;
        if (ph.p_filesz > ph.p_memsz)
            r.fail(strprintf("segment %u has more file bytes (0x%llx) than memory bytes (0x%llx)", i,
                             static_cast<unsigned long long>(ph.p_filesz),
                             static_cast<unsigned long long>(ph.p_memsz)));
        if (!r.fits(ph.p_offset, ph.p_filesz))
            r.fail(
                strprintf("segment %u: its file bytes (offset 0x%llx, 0x%llx bytes) are past the end of the "
                          "file (truncated?)",
                          i, static_cast<unsigned long long>(ph.p_offset),
                          static_cast<unsigned long long>(ph.p_filesz)));
        if (ph.p_paddr > UINT64_MAX - (ph.p_memsz - 1))
            r.fail(strprintf("segment %u goes past the end of the address space", i));
        img.segments.push_back({ph.p_paddr, ph.p_filesz, ph.p_memsz, ph.p_offset, i});
    }
    if (img.segments.empty()) r.fail("has no loadable segments");
    img.entry = eh.e_entry;
    read_symbols(r, b, eh, img);
    return img;
}

} // namespace

uint64_t GuestImage::low() const
{
    uint64_t lo = UINT64_MAX;
    for (const auto &s : segments)
        lo = std::min(lo, s.paddr);
    return lo;
}

uint64_t GuestImage::high() const
{
    uint64_t hi = 0;
    for (const auto &s : segments)
        hi = std::max(hi, s.paddr + s.memsz);
    return hi;
}

GuestImage parse_guest_image(const std::string &name, std::vector<uint8_t> bytes, uint64_t raw_base,
                             uint16_t machine)
{
    if (bytes.size() >= 4 && std::memcmp(bytes.data(), ELFMAG, SELFMAG) == 0)
        return parse_elf(name, std::move(bytes), machine);
    if (bytes.empty()) throw Error(name + ": is empty");
    GuestImage img;
    img.file = name;
    img.bytes = std::move(bytes);
    uint64_t size = img.bytes.size();
    if (raw_base > UINT64_MAX - (size - 1))
        throw Error(name + ": a raw image of " + format_size(size) + " at " + format_hex(raw_base) +
                    " goes past the end of the address space");
    img.segments.push_back({raw_base, size, size, 0, 0});
    img.entry = raw_base;
    return img;
}

GuestImage read_guest_image(const std::string &path, uint64_t raw_base, uint16_t machine)
{
    std::ifstream in(path, std::ios::binary);
    if (!in) throw Error(path + ": cannot open: " + std::strerror(errno));
    std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (in.bad()) throw Error(path + ": cannot read: " + std::strerror(errno));
    return parse_guest_image(path, std::move(bytes), raw_base, machine);
}

void load_guest_image(const GuestImage &img, AddressSpace &as, const std::string &machine_name,
                      int overlay_priority)
{
    // Walk [first, last] section by section: RAM/ROM pieces go to `put`,
    // overlay windows are skipped, anything else is an error.
    auto walk = [&](const GuestImage::Segment &s, auto put) {
        uint64_t addr = s.paddr, last = s.paddr + (s.memsz - 1);
        for (;;) {
            const AddressSpace::Section *sec = as.find(addr);
            bool ok =
                sec && (sec->region->kind() == RegionKind::Ram || sec->region->kind() == RegionKind::Rom);
            bool overlay =
                sec && sec->region->kind() == RegionKind::Mmio && sec->priority >= overlay_priority;
            if (!ok && !overlay && !sec) {
                // Unmapped bytes that are only the ELF headers and the zero padding after them (a linker
                // puts them in the first segment below the code, e.g. with -Ttext=RAM_BASE) are skipped,
                // as QEMU does; anything else must land in memory.
                uint64_t hole_last = last;
                for (const auto &x : as.sections())
                    if (x.start > addr) {
                        hole_last = std::min(last, x.start - 1);
                        break;
                    }
                bool only_headers = true;
                for (uint64_t a = addr; a <= hole_last && only_headers; ++a) {
                    uint64_t off = s.offset + (a - s.paddr);
                    only_headers = a - s.paddr < s.filesz && (off < img.header_end || img.bytes[off] == 0);
                }
                if (only_headers && img.elf && hole_last < last) {
                    addr = hole_last + 1;
                    continue;
                }
            }
            if (!ok && !overlay)
                throw Error(img.file + ": " +
                            (img.elf ? strprintf("segment %u", s.index) : std::string("image")) + " (" +
                            range(s.paddr, s.memsz) + ") is not in RAM or ROM of machine '" + machine_name +
                            "'");
            uint64_t end = std::min(last, sec->last());
            if (ok) put(addr, end - addr + 1);
            if (end == last) break;
            addr = end + 1;
        }
    };
    for (const auto &s : img.segments)
        walk(s, [](uint64_t, uint64_t) {});
    static const std::vector<uint8_t> zeros(64 * 1024);
    for (const auto &s : img.segments) {
        walk(s, [&](uint64_t addr, uint64_t len) {
            uint64_t off = addr - s.paddr; // offset inside the segment
            while (len) {
                uint64_t n;
                const uint8_t *src;
                if (off < s.filesz) {
                    n = std::min(len, s.filesz - off);
                    src = img.bytes.data() + s.offset + off;
                } else {
                    n = std::min<uint64_t>(len, zeros.size());
                    src = zeros.data();
                }
                if (as.write_rom(addr, src, n) != KEEL_MEM_OK)
                    throw Error(img.file + strprintf(": cannot write 0x%llx bytes at 0x%llx",
                                                     static_cast<unsigned long long>(n),
                                                     static_cast<unsigned long long>(addr)));
                addr += n;
                off += n;
                len -= n;
            }
        });
    }
}

} // namespace keel
