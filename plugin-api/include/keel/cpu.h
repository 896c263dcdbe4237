/* SPDX-License-Identifier: MIT */
/* CPU device types: the state every CPU shares with the engine, and the hooks an accelerator calls. */
#ifndef KEEL_CPU_H
#define KEEL_CPU_H

#include <keel/common.h>
#include <keel/ir.h>

KEEL_EXTERN_C_BEGIN

/*
 * A CPU is a device type whose KeelDeviceTypeInfo.cpu points to a
 * KeelCpuOps. Its instance state (the "env" the IR and helpers see) starts
 * with a KeelCpuCommon. The machine creates `cpus.count` instances named
 * cpu0, cpu1, ... and sets KeelCpuCommon.cpu_index before realize; an
 * accelerator then runs them.
 *
 * Threads: the engine runs every CPU on one vCPU thread. Device callbacks
 * (and so IRQ inputs of the CPU) run on other threads holding the big lock;
 * a CPU that gets a new interrupt there sets exit_request and calls
 * KeelServices.cpu_kick so that a halted CPU wakes up.
 */

typedef struct KeelCpuCommon KeelCpuCommon;
typedef struct KeelCpuDebugOps KeelCpuDebugOps; /* below; Since: ABI 1.4 */

/**
 * KeelCpuEngine: what the engine running a CPU offers the CPU's helpers.
 * Filled in by the engine before the CPU first runs; NULL before that.
 * Since: ABI 1.0
 */
typedef struct KeelCpuEngine {
    size_t size;
    /* drop every cached translation of virtual addresses (satp, privilege
       rules or PMP changed) */
    void (*tlb_flush)(KeelCpuCommon *cpu);
    /* drop cached translations of the page holding @vaddr, in every MMU index */
    void (*tlb_flush_page)(KeelCpuCommon *cpu, uint64_t vaddr);
    /* drop every translated block of this CPU (fence.i) */
    void (*tb_flush)(KeelCpuCommon *cpu);
    void *reserved[8];
} KeelCpuEngine;

/**
 * KeelCpuCommon: the first member of every CPU's instance state.
 * @exit_request: nonzero makes the engine leave the current block at the
 *   next block boundary (chained blocks included) and return to the
 *   execution loop, which clears it and calls exec_interrupt. Any thread.
 * @exception: set by a helper or by tlb_fill/mem_fault (on the vCPU thread)
 *   when it recorded a guest exception; the engine leaves the block, clears
 *   it and calls exec_exception.
 * @halted: set by a helper (wfi); the engine stops running this CPU until
 *   has_work() says otherwise.
 * @cpu_index: 0, 1, ...: set by the machine before realize.
 * @engine: set by the engine (see KeelCpuEngine).
 * @engine_data: the engine's own per-CPU data.
 * Since: ABI 1.0
 */
struct KeelCpuCommon {
    volatile uint32_t exit_request;
    uint32_t exception;
    uint32_t halted;
    uint32_t cpu_index;
    const KeelCpuEngine *engine;
    void *engine_data;
    void *reserved[6];
};

/** Kinds of memory access. Since: ABI 1.0 */
typedef enum KeelAccess {
    KEEL_ACCESS_READ = 0,
    KEEL_ACCESS_WRITE = 1,
    KEEL_ACCESS_EXEC = 2,
} KeelAccess;

/** Page permissions in KeelTlbFill.prot. Since: ABI 1.0 */
enum {
    KEEL_PROT_READ = 1u << 0,
    KEEL_PROT_WRITE = 1u << 1,
    KEEL_PROT_EXEC = 1u << 2,
};

/**
 * KeelTlbFill: the answer of a successful tlb_fill.
 * @paddr: the physical address @vaddr translates to.
 * @prot: the accesses the engine may perform on the page without asking
 *   again (at least the one asked for). A CPU that sets A/D bits leaves
 *   KEEL_PROT_WRITE out until the page is dirty.
 * @page_bits: log2 of the size of the aligned range around @vaddr that
 *   translates the same way (12 or more), or 0: do not cache, ask again on
 *   every access (e.g. PMP regions smaller than a page).
 * Since: ABI 1.0
 */
typedef struct KeelTlbFill {
    uint64_t paddr;
    uint32_t prot;
    uint32_t page_bits;
} KeelTlbFill;

/** Why a memory operation failed after translation (KeelCpuOps.mem_fault). Since: ABI 1.0 */
typedef enum KeelMemFault {
    KEEL_FAULT_UNALIGNED = 0, /* a KEEL_MO_ALIGN operation on a misaligned address */
    KEEL_FAULT_BUS = 1,       /* nothing answered at the physical address, or the device refused */
} KeelMemFault;

/**
 * KeelCpuOps: the hooks an engine calls on a CPU. @env is the instance state.
 * Unless noted, called on the vCPU thread.
 *
 * @arch: the architecture as gdb names it ("riscv:rv64").
 * @globals, @n_globals: the state fields the IR names (KeelIrGlobal);
 *   @pc_global indexes the program counter among them (type I64); the
 *   kernel writes it to set an entry point.
 * @n_mmu_idx: MMU indexes used by loads, stores and tlb_fill (at most 8).
 * @max_insn_bytes: longest instruction.
 * @tb_flags: everything besides the pc that translation depends on (privilege,
 *   MMU mode, FP enabled...); bits 0-2 are the MMU index of instruction fetch.
 *   Blocks are cached per (virtual pc, physical pc, flags).
 * @translate: emit the IR of one block starting at @pc under @flags, at most
 *   @max_insns instructions; every instruction starts with insn_start and the
 *   block ends with an exit on every path.
 * @tlb_fill: translate @vaddr for @access under @mmu_idx. KEEL_OK and *@out,
 *   or KEEL_ERR: with @probe zero the CPU recorded the fault (page fault,
 *   access fault) as a pending exception and set KeelCpuCommon.exception;
 *   with @probe nonzero it recorded nothing.
 * @mem_fault: record the exception for a memory operation that failed after
 *   translation (@vaddr the guest address) and set KeelCpuCommon.exception.
 * @exec_exception: deliver the recorded exception; the pc global holds the
 *   pc of the instruction that raised it.
 * @exec_interrupt: at a block boundary: take one pending, enabled interrupt
 *   (redirecting the pc); 1 if one was taken.
 * @has_work: whether a halted CPU should run again (an interrupt is pending,
 *   even if globally disabled). Any thread.
 * @disas: disassemble the instruction at @pc from @bytes (@len valid) into
 *   @buf; returns its length in bytes (0 if @len is too short or invalid).
 * @dump_state: registers as text for -d cpu and monitors; returns the length
 *   that @buf needed.
 * @read_reg, @write_reg: register @n in gdb's numbering for @arch (through
 *   the pc) as a little-endian value; the number of bytes, 0 if no register.
 * Since: ABI 1.0
 */
typedef struct KeelCpuOps {
    size_t size;
    const char *arch;
    const KeelIrGlobal *globals;
    unsigned n_globals;
    unsigned pc_global;
    unsigned n_mmu_idx;
    unsigned max_insn_bytes;

    uint64_t (*tb_flags)(void *env);
    void (*translate)(void *env, KeelIrBuilder *b, const KeelIrBuilderOps *ops, uint64_t pc, uint64_t flags,
                      unsigned max_insns);
    int (*tlb_fill)(void *env, uint64_t vaddr, KeelAccess access, unsigned mmu_idx, int probe,
                    KeelTlbFill *out);
    void (*mem_fault)(void *env, uint64_t vaddr, KeelAccess access, unsigned mmu_idx, KeelMemFault kind);
    void (*exec_exception)(void *env);
    int (*exec_interrupt)(void *env);
    int (*has_work)(void *env);
    size_t (*disas)(void *env, uint64_t pc, const uint8_t *bytes, size_t len, char *buf, size_t bufsize);
    size_t (*dump_state)(void *env, char *buf, size_t bufsize);
    unsigned (*read_reg)(void *env, unsigned n, uint8_t *buf, size_t bufsize);
    unsigned (*write_reg)(void *env, unsigned n, const uint8_t *buf, size_t len);
    void *reserved[8];
    const KeelCpuDebugOps
        *debug; /* Since: ABI 1.4 (present when @size covers it); NULL: no debugger support */
} KeelCpuOps;

/** The CPU state of @env. Since: ABI 1.0 */
/**
 * KeelCpuDebugOps: what debuggers (the gdbstub, the monitor's x and
 * info registers) need of a CPU type beyond KeelCpuOps. Register numbers
 * are read_reg's, which are gdb's for the architecture.
 * @gdb_xml: the target description file @annex ("target.xml" and the files
 *   it includes), NUL-terminated, valid as long as @env; NULL if there is no
 *   such file.
 * @gdb_g_regs: registers 0 .. n-1 make up gdb's `g` packet (the others are
 *   read one by one with `p`).
 * @gdb_pc_reg: the pc's register number.
 * @translate: the physical address of @vaddr as the CPU's data accesses see
 *   it now (privilege, address translation), without side effects (no
 *   accessed/dirty bits, no trap); 0, or -1 if it is not mapped.
 * Since: ABI 1.4
 */
struct KeelCpuDebugOps {
    size_t size;
    const char *(*gdb_xml)(void *env, const char *annex);
    unsigned gdb_g_regs;
    unsigned gdb_pc_reg;
    int (*translate)(void *env, uint64_t vaddr, uint64_t *paddr);
    void *reserved[4];
};

#define KEEL_CPU_COMMON(env) ((KeelCpuCommon *)(env))

KEEL_EXTERN_C_END

#endif /* KEEL_CPU_H */
