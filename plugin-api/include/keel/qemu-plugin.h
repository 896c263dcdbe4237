/* SPDX-License-Identifier: MIT */
/* QEMU's TCG plugin API (instrumentation plugins), every API version 1..7, source-compatible with QEMU. */
/*
 * Written for keel from QEMU's public API description (docs/devel/tcg-plugins.rst and the documented
 * function list of each release); the names, types, enum values and macros are QEMU's so that a plugin
 * written for QEMU builds unchanged, and a plugin built in version-1 mode is binary-compatible with
 * QEMU 7.2 (Debian 12's qemu-system-*).
 *
 * Choosing the API version
 * ------------------------
 * By default this header declares the newest API (version 7). A plugin written for an older QEMU
 * selects the API it was written for by defining KEEL_QEMU_PLUGIN_API_VERSION (1..7) before including
 * this header:
 *
 *     #define KEEL_QEMU_PLUGIN_API_VERSION 1   // QEMU 4.2 .. 8.2
 *     #include <qemu-plugin.h>
 *     QEMU_PLUGIN_EXPORT int qemu_plugin_version = QEMU_PLUGIN_VERSION;   // == 1
 *
 * The header then declares exactly that version's functions and signatures (QEMU_PLUGIN_VERSION is the
 * selected number), so using a function the version does not have is a compile error. The plugin tells
 * the loader which ABI it speaks through the exported `qemu_plugin_version` variable, as in QEMU; keel
 * calls every plugin through the ABI it declares, so plugins of different versions can run in one keel
 * process (see docs/drafts/qemu-plugin-abi.md). The symbol names are QEMU's plain names in every mode.
 *
 * Version history (what a plugin of each version sees; the QEMU releases are informative):
 *   1  QEMU 4.2-8.2   the original API; inline ops on a raw pointer (not per-vCPU), n_vcpus/n_max_vcpus,
 *                     insn_data returns a pointer.
 *   2  QEMU 9.0       scoreboards and per-vCPU inline ops replace the pointer inline ops; num_vcpus
 *                     replaces n_vcpus/n_max_vcpus; register descriptors and register reads.
 *   3  QEMU 9.0/9.1   insn_data copies into a caller buffer; conditional callbacks; STORE_U64 inline op.
 *   4  QEMU 9.2       memory values (mem_get_value), read_memory_vaddr, time control.
 *   5  QEMU 10.0-10.2 memory writes, hwaddr reads/writes, write_register, translate_vaddr; the
 *                     discontinuity callbacks arrived while the version was still 5 (QEMU 10.2).
 *   6  QEMU 11.0      register read/write return bool; set_pc with QEMU_PLUGIN_CB_RW_REGS_PC; syscall
 *                     filters; register descriptors gain is_readonly.
 *   7  QEMU 11.1      every callback takes a userdata pointer and none takes the plugin id; the
 *                     simple_cb types are gone.
 */
#ifndef KEEL_QEMU_PLUGIN_H
#define KEEL_QEMU_PLUGIN_H

/**
 * KEEL_QEMU_PLUGIN_API_MIN / KEEL_QEMU_PLUGIN_API_MAX: the QEMU plugin API versions this header (and keel's
 * loader) supports. Since: ABI 1.2
 */
#define KEEL_QEMU_PLUGIN_API_MIN 1
#define KEEL_QEMU_PLUGIN_API_MAX 7

/**
 * KEEL_QEMU_PLUGIN_API_VERSION: the API version the including plugin is written for; define it before
 * the include to select an older one. Since: ABI 1.2
 */
#ifndef KEEL_QEMU_PLUGIN_API_VERSION
#define KEEL_QEMU_PLUGIN_API_VERSION KEEL_QEMU_PLUGIN_API_MAX
#endif
#if KEEL_QEMU_PLUGIN_API_VERSION < KEEL_QEMU_PLUGIN_API_MIN || \
    KEEL_QEMU_PLUGIN_API_VERSION > KEEL_QEMU_PLUGIN_API_MAX
#error "KEEL_QEMU_PLUGIN_API_VERSION must be between 1 and 7 (the QEMU plugin API versions keel supports)"
#endif

/* QEMU's header pulls these in; plugins rely on them (PRIu64, bool, size_t, and glib from version 2). */
#include <inttypes.h>
#include <stdbool.h>
#include <stddef.h>
#if KEEL_QEMU_PLUGIN_API_VERSION >= 2
#include <glib.h>
#endif

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Symbol visibility. Build plugins with -fvisibility=hidden and mark what the emulator must find
 * (qemu_plugin_install, qemu_plugin_version) with QEMU_PLUGIN_EXPORT. QEMU_PLUGIN_API marks the functions
 * the emulator provides (it only matters for Windows DLL import/export).
 */
#if defined _WIN32 || defined __CYGWIN__
#ifdef CONFIG_PLUGIN
#define QEMU_PLUGIN_EXPORT __declspec(dllimport)
#define QEMU_PLUGIN_API __declspec(dllexport)
#else
#define QEMU_PLUGIN_EXPORT __declspec(dllexport)
#define QEMU_PLUGIN_API __declspec(dllimport)
#endif
#define QEMU_PLUGIN_LOCAL
#else
#define QEMU_PLUGIN_EXPORT __attribute__((visibility("default")))
#define QEMU_PLUGIN_LOCAL __attribute__((visibility("hidden")))
#define QEMU_PLUGIN_API
#endif

/** The API version this translation unit is built for (the selected KEEL_QEMU_PLUGIN_API_VERSION). */
#define QEMU_PLUGIN_VERSION KEEL_QEMU_PLUGIN_API_VERSION

/** Opaque per-plugin handle the emulator passes to qemu_plugin_install. QEMU API: since v1. */
typedef uint64_t qemu_plugin_id_t;

/**
 * The API version the plugin was built for. Every plugin defines it, exported, normally as
 * `QEMU_PLUGIN_EXPORT int qemu_plugin_version = QEMU_PLUGIN_VERSION;`. The emulator refuses a plugin
 * without it or with a version outside its supported range. QEMU API: since v1.
 */
extern QEMU_PLUGIN_EXPORT int qemu_plugin_version;

/**
 * What the emulator tells a plugin at install time. Only valid during qemu_plugin_install: copy what
 * you need. QEMU API: since v1.
 */
typedef struct qemu_info_t {
    const char *target_name; /* guest architecture, e.g. "riscv64" */
    struct {
        int min; /* oldest plugin API version the emulator accepts */
        int cur; /* newest plugin API version the emulator provides */
    } version;
    bool system_emulation; /* true for whole-machine emulation, false for user mode */
    union {
        struct {
            int smp_vcpus; /* vCPUs at start */
            int max_vcpus; /* vCPUs the machine can ever have */
        } system;          /* meaningful when system_emulation is true */
    };
} qemu_info_t;

/**
 * The one function every plugin must export; the emulator calls it once after loading the plugin.
 * @id is this plugin's handle, @argv the `name=value` arguments from `-plugin file,name=value,...`
 * (they stay valid as long as the plugin is loaded; @info does not). Return 0 to accept, anything
 * else to make the emulator refuse the plugin. Do not call qemu_plugin_uninstall from here.
 * QEMU API: since v1.
 */
QEMU_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc,
                                           char **argv);

/* ---------------------------------------------------------------------------------------------------
 * Callback types
 * ------------------------------------------------------------------------------------------------- */

#if KEEL_QEMU_PLUGIN_API_VERSION <= 6
/** Callback given only the plugin's id (uninstall, reset, flush). QEMU API: v1-v6 (removed in v7). */
typedef void (*qemu_plugin_simple_cb_t)(qemu_plugin_id_t id);

/** Callback given the plugin's id and the registered userdata (atexit). QEMU API: v1-v6 form. */
typedef void (*qemu_plugin_udata_cb_t)(qemu_plugin_id_t id, void *userdata);

/** Callback given the plugin's id and a vCPU index (vCPU lifecycle). QEMU API: v1-v6 (removed in v7). */
typedef void (*qemu_plugin_vcpu_simple_cb_t)(qemu_plugin_id_t id, unsigned int vcpu_index);
#else
/** Callback given the registered userdata (uninstall, reset, flush, atexit). QEMU API: v7 form. */
typedef void (*qemu_plugin_udata_cb_t)(void *userdata);
#endif

/** Callback given a vCPU index and the registered userdata (execution, vCPU lifecycle in v7). Since v1. */
typedef void (*qemu_plugin_vcpu_udata_cb_t)(unsigned int vcpu_index, void *userdata);

#if KEEL_QEMU_PLUGIN_API_VERSION >= 5
/**
 * Kinds of program-counter discontinuity, usable as a mask. An interrupt is asynchronous (from outside
 * the CPU), an exception is caused by the instruction being executed, a host call is an exception the
 * emulator itself handles (semihosting, hypervisor calls). QEMU API: since v5 (QEMU 10.2).
 */
enum qemu_plugin_discon_type {
    QEMU_PLUGIN_DISCON_INTERRUPT = 1 << 0,
    QEMU_PLUGIN_DISCON_EXCEPTION = 1 << 1,
    QEMU_PLUGIN_DISCON_HOSTCALL = 1 << 2,
    QEMU_PLUGIN_DISCON_ALL = -1
};

/**
 * Called after a vCPU took a discontinuity, with its pc already at the handler (@to_pc). For an
 * interrupt @from_pc is the instruction that would have run next; for an exception or host call it is
 * the instruction that caused it (which may not have retired).
 */
#if KEEL_QEMU_PLUGIN_API_VERSION <= 6
typedef void (*qemu_plugin_vcpu_discon_cb_t)(qemu_plugin_id_t id, unsigned int vcpu_index,
                                             enum qemu_plugin_discon_type type, uint64_t from_pc,
                                             uint64_t to_pc);
#else
typedef void (*qemu_plugin_vcpu_discon_cb_t)(unsigned int vcpu_index, enum qemu_plugin_discon_type type,
                                             uint64_t from_pc, uint64_t to_pc, void *userdata);
#endif
#endif

/* ---------------------------------------------------------------------------------------------------
 * Lifecycle
 * ------------------------------------------------------------------------------------------------- */

/*
 * qemu_plugin_uninstall / qemu_plugin_reset: remove the plugin, or just all its callbacks. Both take
 * effect asynchronously: the plugin keeps receiving callbacks until @cb runs. Not from
 * qemu_plugin_install. QEMU API: since v1; v7 passes userdata instead of the id to @cb.
 */
#if KEEL_QEMU_PLUGIN_API_VERSION <= 6
QEMU_PLUGIN_API void qemu_plugin_uninstall(qemu_plugin_id_t id, qemu_plugin_simple_cb_t cb);
QEMU_PLUGIN_API void qemu_plugin_reset(qemu_plugin_id_t id, qemu_plugin_simple_cb_t cb);
#else
QEMU_PLUGIN_API void qemu_plugin_uninstall(qemu_plugin_id_t id, qemu_plugin_udata_cb_t cb, void *userdata);
QEMU_PLUGIN_API void qemu_plugin_reset(qemu_plugin_id_t id, qemu_plugin_udata_cb_t cb, void *userdata);
#endif

/*
 * vCPU lifecycle: @cb runs when a vCPU is created (init), destroyed (exit), goes idle waiting for an
 * interrupt (idle) and starts running again (resume). qemu_plugin_vcpu_for_each calls @cb once per
 * existing vCPU, right away. QEMU API: since v1; v7 adds userdata.
 */
#if KEEL_QEMU_PLUGIN_API_VERSION <= 6
QEMU_PLUGIN_API void qemu_plugin_register_vcpu_init_cb(qemu_plugin_id_t id, qemu_plugin_vcpu_simple_cb_t cb);
QEMU_PLUGIN_API void qemu_plugin_register_vcpu_exit_cb(qemu_plugin_id_t id, qemu_plugin_vcpu_simple_cb_t cb);
QEMU_PLUGIN_API void qemu_plugin_register_vcpu_idle_cb(qemu_plugin_id_t id, qemu_plugin_vcpu_simple_cb_t cb);
QEMU_PLUGIN_API void qemu_plugin_register_vcpu_resume_cb(qemu_plugin_id_t id,
                                                         qemu_plugin_vcpu_simple_cb_t cb);
QEMU_PLUGIN_API void qemu_plugin_vcpu_for_each(qemu_plugin_id_t id, qemu_plugin_vcpu_simple_cb_t cb);
#else
QEMU_PLUGIN_API void qemu_plugin_register_vcpu_init_cb(qemu_plugin_id_t id, qemu_plugin_vcpu_udata_cb_t cb,
                                                       void *userdata);
QEMU_PLUGIN_API void qemu_plugin_register_vcpu_exit_cb(qemu_plugin_id_t id, qemu_plugin_vcpu_udata_cb_t cb,
                                                       void *userdata);
QEMU_PLUGIN_API void qemu_plugin_register_vcpu_idle_cb(qemu_plugin_id_t id, qemu_plugin_vcpu_udata_cb_t cb,
                                                       void *userdata);
QEMU_PLUGIN_API void qemu_plugin_register_vcpu_resume_cb(qemu_plugin_id_t id, qemu_plugin_vcpu_udata_cb_t cb,
                                                         void *userdata);
QEMU_PLUGIN_API void qemu_plugin_vcpu_for_each(qemu_plugin_id_t id, qemu_plugin_vcpu_udata_cb_t cb,
                                               void *userdata);
#endif

#if KEEL_QEMU_PLUGIN_API_VERSION >= 5
/**
 * Calls @cb after every discontinuity of a kind in the @type mask. QEMU API: since v5 (QEMU 10.2);
 * v7 adds userdata.
 */
#if KEEL_QEMU_PLUGIN_API_VERSION <= 6
QEMU_PLUGIN_API void qemu_plugin_register_vcpu_discon_cb(qemu_plugin_id_t id,
                                                         enum qemu_plugin_discon_type type,
                                                         qemu_plugin_vcpu_discon_cb_t cb);
#else
QEMU_PLUGIN_API void qemu_plugin_register_vcpu_discon_cb(qemu_plugin_id_t id,
                                                         enum qemu_plugin_discon_type type,
                                                         qemu_plugin_vcpu_discon_cb_t cb, void *userdata);
#endif
#endif

/* ---------------------------------------------------------------------------------------------------
 * Translation-time handles and instrumentation
 * ------------------------------------------------------------------------------------------------- */

/** A block being translated; valid only inside the translation callback. QEMU API: since v1. */
struct qemu_plugin_tb;
/** One instruction of such a block; valid only inside the translation callback. QEMU API: since v1. */
struct qemu_plugin_insn;

#if KEEL_QEMU_PLUGIN_API_VERSION >= 2
/** Per-vCPU storage: one entry of a fixed size per vCPU, grown as vCPUs appear. QEMU API: since v2. */
struct qemu_plugin_scoreboard;

/** A uint64_t at @offset inside every entry of @score; what inline ops and conditions operate on. Since v2.
 */
typedef struct {
    struct qemu_plugin_scoreboard *score;
    size_t offset;
} qemu_plugin_u64;
#endif

/**
 * What a callback does with the CPU registers, so the emulator can make them current (R), write them
 * back (RW), or also redirect execution (RW_REGS_PC, needed for qemu_plugin_set_pc). QEMU API: since
 * v1; RW_REGS_PC since v6.
 */
enum qemu_plugin_cb_flags {
    QEMU_PLUGIN_CB_NO_REGS,
    QEMU_PLUGIN_CB_R_REGS,
    QEMU_PLUGIN_CB_RW_REGS,
#if KEEL_QEMU_PLUGIN_API_VERSION >= 6
    QEMU_PLUGIN_CB_RW_REGS_PC,
#endif
};

/** Which memory accesses a memory callback or inline op applies to. QEMU API: since v1. */
enum qemu_plugin_mem_rw {
    QEMU_PLUGIN_MEM_R = 1,
    QEMU_PLUGIN_MEM_W,
    QEMU_PLUGIN_MEM_RW,
};

#if KEEL_QEMU_PLUGIN_API_VERSION >= 4
/** Width of the value qemu_plugin_mem_get_value returns. QEMU API: since v4. */
enum qemu_plugin_mem_value_type {
    QEMU_PLUGIN_MEM_VALUE_U8,
    QEMU_PLUGIN_MEM_VALUE_U16,
    QEMU_PLUGIN_MEM_VALUE_U32,
    QEMU_PLUGIN_MEM_VALUE_U64,
    QEMU_PLUGIN_MEM_VALUE_U128,
};

/** The value a load read or a store wrote, in host byte order. QEMU API: since v4. */
typedef struct {
    enum qemu_plugin_mem_value_type type;
    union {
        uint8_t u8;
        uint16_t u16;
        uint32_t u32;
        uint64_t u64;
        struct {
            uint64_t low;
            uint64_t high;
        } u128;
    } data;
} qemu_plugin_mem_value;
#endif

#if KEEL_QEMU_PLUGIN_API_VERSION >= 3
/**
 * Condition of a conditional callback: it runs when `entry <cond> imm` holds (unsigned compare).
 * ALWAYS makes it an ordinary callback, NEVER drops it. QEMU API: since v3.
 */
enum qemu_plugin_cond {
    QEMU_PLUGIN_COND_NEVER,
    QEMU_PLUGIN_COND_ALWAYS,
    QEMU_PLUGIN_COND_EQ,
    QEMU_PLUGIN_COND_NE,
    QEMU_PLUGIN_COND_LT,
    QEMU_PLUGIN_COND_LE,
    QEMU_PLUGIN_COND_GT,
    QEMU_PLUGIN_COND_GE,
};
#endif

/**
 * Called whenever a block is translated; this is where a plugin inspects the block's instructions and
 * attaches execution callbacks and inline ops to it. QEMU API: since v1; v7 drops the id and adds
 * userdata.
 */
#if KEEL_QEMU_PLUGIN_API_VERSION <= 6
typedef void (*qemu_plugin_vcpu_tb_trans_cb_t)(qemu_plugin_id_t id, struct qemu_plugin_tb *tb);
QEMU_PLUGIN_API void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id,
                                                           qemu_plugin_vcpu_tb_trans_cb_t cb);
#else
typedef void (*qemu_plugin_vcpu_tb_trans_cb_t)(struct qemu_plugin_tb *tb, void *userdata);
QEMU_PLUGIN_API void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id,
                                                           qemu_plugin_vcpu_tb_trans_cb_t cb, void *userdata);
#endif

/** Calls @cb each time the translated block @tb starts executing. QEMU API: since v1. */
QEMU_PLUGIN_API void qemu_plugin_register_vcpu_tb_exec_cb(struct qemu_plugin_tb *tb,
                                                          qemu_plugin_vcpu_udata_cb_t cb,
                                                          enum qemu_plugin_cb_flags flags, void *userdata);

/** Inline operations: done by the generated code itself, no call. QEMU API: since v1; STORE_U64 since v3. */
enum qemu_plugin_op {
    QEMU_PLUGIN_INLINE_ADD_U64,
#if KEEL_QEMU_PLUGIN_API_VERSION >= 3
    QEMU_PLUGIN_INLINE_STORE_U64,
#endif
};

#if KEEL_QEMU_PLUGIN_API_VERSION >= 3
/**
 * Like qemu_plugin_register_vcpu_tb_exec_cb, but @cb runs only when `entry <cond> imm` holds for the
 * executing vCPU's entry. QEMU API: since v3.
 */
QEMU_PLUGIN_API void
qemu_plugin_register_vcpu_tb_exec_cond_cb(struct qemu_plugin_tb *tb, qemu_plugin_vcpu_udata_cb_t cb,
                                          enum qemu_plugin_cb_flags flags, enum qemu_plugin_cond cond,
                                          qemu_plugin_u64 entry, uint64_t imm, void *userdata);
#endif

#if KEEL_QEMU_PLUGIN_API_VERSION == 1
/**
 * Applies @op with @imm to the uint64_t at @ptr each time @tb starts executing. The pointer is shared
 * by all vCPUs and the update is not atomic. QEMU API: v1 only (v2 replaced it with the per-vCPU form).
 */
QEMU_PLUGIN_API void qemu_plugin_register_vcpu_tb_exec_inline(struct qemu_plugin_tb *tb,
                                                              enum qemu_plugin_op op, void *ptr,
                                                              uint64_t imm);
#else
/** Applies @op with @imm to the executing vCPU's @entry each time @tb starts executing. Since v2. */
QEMU_PLUGIN_API void qemu_plugin_register_vcpu_tb_exec_inline_per_vcpu(struct qemu_plugin_tb *tb,
                                                                       enum qemu_plugin_op op,
                                                                       qemu_plugin_u64 entry, uint64_t imm);
#endif

/** Calls @cb each time the instruction @insn is about to execute. QEMU API: since v1. */
QEMU_PLUGIN_API void qemu_plugin_register_vcpu_insn_exec_cb(struct qemu_plugin_insn *insn,
                                                            qemu_plugin_vcpu_udata_cb_t cb,
                                                            enum qemu_plugin_cb_flags flags, void *userdata);

#if KEEL_QEMU_PLUGIN_API_VERSION >= 3
/** Conditional form of qemu_plugin_register_vcpu_insn_exec_cb. QEMU API: since v3. */
QEMU_PLUGIN_API void
qemu_plugin_register_vcpu_insn_exec_cond_cb(struct qemu_plugin_insn *insn, qemu_plugin_vcpu_udata_cb_t cb,
                                            enum qemu_plugin_cb_flags flags, enum qemu_plugin_cond cond,
                                            qemu_plugin_u64 entry, uint64_t imm, void *userdata);
#endif

#if KEEL_QEMU_PLUGIN_API_VERSION == 1
/** Pointer inline op each time @insn executes (shared, not atomic). QEMU API: v1 only. */
QEMU_PLUGIN_API void qemu_plugin_register_vcpu_insn_exec_inline(struct qemu_plugin_insn *insn,
                                                                enum qemu_plugin_op op, void *ptr,
                                                                uint64_t imm);
#else
/** Per-vCPU inline op each time @insn executes. QEMU API: since v2. */
QEMU_PLUGIN_API void qemu_plugin_register_vcpu_insn_exec_inline_per_vcpu(struct qemu_plugin_insn *insn,
                                                                         enum qemu_plugin_op op,
                                                                         qemu_plugin_u64 entry, uint64_t imm);
#endif

/** Number of guest instructions in @tb. QEMU API: since v1. */
QEMU_PLUGIN_API size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);

/** Guest virtual address of the first instruction of @tb. QEMU API: since v1. */
QEMU_PLUGIN_API uint64_t qemu_plugin_tb_vaddr(const struct qemu_plugin_tb *tb);

/** Handle of instruction @idx (0-based) of @tb, valid during the translation callback. Since v1. */
QEMU_PLUGIN_API struct qemu_plugin_insn *qemu_plugin_tb_get_insn(const struct qemu_plugin_tb *tb, size_t idx);

#if KEEL_QEMU_PLUGIN_API_VERSION <= 2
/**
 * The instruction's bytes, qemu_plugin_insn_size() of them; the pointer is valid only during the
 * translation callback. QEMU API: v1-v2 form.
 */
QEMU_PLUGIN_API const void *qemu_plugin_insn_data(const struct qemu_plugin_insn *insn);
#else
/**
 * Copies up to @len bytes of the instruction's encoding into @dest; returns how many it copied (the
 * smaller of @len and the instruction size). QEMU API: v3 form.
 */
QEMU_PLUGIN_API size_t qemu_plugin_insn_data(const struct qemu_plugin_insn *insn, void *dest, size_t len);
#endif

/** Size of the instruction in bytes (2 or 4 on RISC-V). QEMU API: since v1. */
QEMU_PLUGIN_API size_t qemu_plugin_insn_size(const struct qemu_plugin_insn *insn);

/** Guest virtual address of the instruction. QEMU API: since v1. */
QEMU_PLUGIN_API uint64_t qemu_plugin_insn_vaddr(const struct qemu_plugin_insn *insn);

/**
 * The instruction's "hardware address": keel returns its guest physical address (as a pointer-sized
 * number); QEMU returns the host address of the instruction's bytes. Either way, use it to tell code
 * locations apart (cache models, coverage), not to read memory. QEMU API: since v1.
 */
QEMU_PLUGIN_API void *qemu_plugin_insn_haddr(const struct qemu_plugin_insn *insn);

/* ---------------------------------------------------------------------------------------------------
 * Memory accesses
 * ------------------------------------------------------------------------------------------------- */

/** Opaque description of one memory access, queried with the qemu_plugin_mem_* functions. Since v1. */
typedef uint32_t qemu_plugin_meminfo_t;
/** Opaque physical-address information of one access; valid only during the memory callback. Since v1. */
struct qemu_plugin_hwaddr;

/** log2 of the access size in bytes (0: byte, 1: 16 bits, 2: 32 bits, 3: 64 bits). QEMU API: since v1. */
QEMU_PLUGIN_API unsigned int qemu_plugin_mem_size_shift(qemu_plugin_meminfo_t info);
/** Whether the loaded value was sign-extended. QEMU API: since v1. */
QEMU_PLUGIN_API bool qemu_plugin_mem_is_sign_extended(qemu_plugin_meminfo_t info);
/** Whether the access was big-endian (never on RISC-V). QEMU API: since v1. */
QEMU_PLUGIN_API bool qemu_plugin_mem_is_big_endian(qemu_plugin_meminfo_t info);
/** Whether the access was a store. QEMU API: since v1. */
QEMU_PLUGIN_API bool qemu_plugin_mem_is_store(qemu_plugin_meminfo_t info);

#if KEEL_QEMU_PLUGIN_API_VERSION >= 4
/** The value the access loaded or stored (call from the memory callback). QEMU API: since v4. */
QEMU_PLUGIN_API qemu_plugin_mem_value qemu_plugin_mem_get_value(qemu_plugin_meminfo_t info);
#endif

/**
 * Physical-address information for the access at @vaddr (call from the memory callback); NULL in user
 * mode. QEMU API: since v1.
 */
QEMU_PLUGIN_API struct qemu_plugin_hwaddr *qemu_plugin_get_hwaddr(qemu_plugin_meminfo_t info, uint64_t vaddr);

/** Whether the access went to a device (MMIO) rather than RAM. QEMU API: since v1. */
QEMU_PLUGIN_API bool qemu_plugin_hwaddr_is_io(const struct qemu_plugin_hwaddr *haddr);

/** The guest physical address of the access. QEMU API: since v1. */
QEMU_PLUGIN_API uint64_t qemu_plugin_hwaddr_phys_addr(const struct qemu_plugin_hwaddr *haddr);

/** Name of the device or RAM region accessed; the string lives as long as the plugin. Since v1. */
QEMU_PLUGIN_API const char *qemu_plugin_hwaddr_device_name(const struct qemu_plugin_hwaddr *h);

/** Called for each memory access of an instrumented instruction, after the access. QEMU API: since v1. */
typedef void (*qemu_plugin_vcpu_mem_cb_t)(unsigned int vcpu_index, qemu_plugin_meminfo_t info, uint64_t vaddr,
                                          void *userdata);

/** Calls @cb for every access of kind @rw that @insn makes. QEMU API: since v1. */
QEMU_PLUGIN_API void qemu_plugin_register_vcpu_mem_cb(struct qemu_plugin_insn *insn,
                                                      qemu_plugin_vcpu_mem_cb_t cb,
                                                      enum qemu_plugin_cb_flags flags,
                                                      enum qemu_plugin_mem_rw rw, void *userdata);

#if KEEL_QEMU_PLUGIN_API_VERSION == 1
/** Pointer inline op for every access of kind @rw that @insn makes. QEMU API: v1 only. */
QEMU_PLUGIN_API void qemu_plugin_register_vcpu_mem_inline(struct qemu_plugin_insn *insn,
                                                          enum qemu_plugin_mem_rw rw, enum qemu_plugin_op op,
                                                          void *ptr, uint64_t imm);
#else
/** Per-vCPU inline op for every access of kind @rw that @insn makes. QEMU API: since v2. */
QEMU_PLUGIN_API void qemu_plugin_register_vcpu_mem_inline_per_vcpu(struct qemu_plugin_insn *insn,
                                                                   enum qemu_plugin_mem_rw rw,
                                                                   enum qemu_plugin_op op,
                                                                   qemu_plugin_u64 entry, uint64_t imm);
#endif

#if KEEL_QEMU_PLUGIN_API_VERSION >= 4
/**
 * Asks to drive the guest clock. Only the first plugin to ask gets the handle; the others get NULL.
 * QEMU API: since v4.
 */
QEMU_PLUGIN_API const void *qemu_plugin_request_time_control(void);

/** Moves the guest clock forward to @time nanoseconds (from 0 at start); needs the handle. Since v4. */
QEMU_PLUGIN_API void qemu_plugin_update_ns(const void *handle, int64_t time);
#endif

/* ---------------------------------------------------------------------------------------------------
 * System calls (user-mode emulation only; keel runs whole machines, so these never fire in keel)
 * ------------------------------------------------------------------------------------------------- */

#if KEEL_QEMU_PLUGIN_API_VERSION <= 6
/** Called before a guest system call with its number and eight arguments. QEMU API: v1-v6 form. */
typedef void (*qemu_plugin_vcpu_syscall_cb_t)(qemu_plugin_id_t id, unsigned int vcpu_index, int64_t num,
                                              uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5,
                                              uint64_t a6, uint64_t a7, uint64_t a8);
/** Called after a guest system call with its result. QEMU API: v1-v6 form. */
typedef void (*qemu_plugin_vcpu_syscall_ret_cb_t)(qemu_plugin_id_t id, unsigned int vcpu_idx, int64_t num,
                                                  int64_t ret);
QEMU_PLUGIN_API void qemu_plugin_register_vcpu_syscall_cb(qemu_plugin_id_t id,
                                                          qemu_plugin_vcpu_syscall_cb_t cb);
QEMU_PLUGIN_API void qemu_plugin_register_vcpu_syscall_ret_cb(qemu_plugin_id_t id,
                                                              qemu_plugin_vcpu_syscall_ret_cb_t cb);
#else
/** Called before a guest system call with its number and eight arguments. QEMU API: v7 form. */
typedef void (*qemu_plugin_vcpu_syscall_cb_t)(unsigned int vcpu_index, int64_t num, uint64_t a1, uint64_t a2,
                                              uint64_t a3, uint64_t a4, uint64_t a5, uint64_t a6, uint64_t a7,
                                              uint64_t a8, void *userdata);
/** Called after a guest system call with its result. QEMU API: v7 form. */
typedef void (*qemu_plugin_vcpu_syscall_ret_cb_t)(unsigned int vcpu_index, int64_t num, int64_t ret,
                                                  void *userdata);
QEMU_PLUGIN_API void qemu_plugin_register_vcpu_syscall_cb(qemu_plugin_id_t id,
                                                          qemu_plugin_vcpu_syscall_cb_t cb, void *userdata);
QEMU_PLUGIN_API void qemu_plugin_register_vcpu_syscall_ret_cb(qemu_plugin_id_t id,
                                                              qemu_plugin_vcpu_syscall_ret_cb_t cb,
                                                              void *userdata);
#endif

#if KEEL_QEMU_PLUGIN_API_VERSION == 6
/**
 * Called before a guest system call; returning true skips the call, whose result the callback then
 * stores in *@sysret. QEMU API: v6 form.
 */
typedef bool (*qemu_plugin_vcpu_syscall_filter_cb_t)(qemu_plugin_id_t id, unsigned int vcpu_index,
                                                     int64_t num, uint64_t a1, uint64_t a2, uint64_t a3,
                                                     uint64_t a4, uint64_t a5, uint64_t a6, uint64_t a7,
                                                     uint64_t a8, uint64_t *sysret);
QEMU_PLUGIN_API void qemu_plugin_register_vcpu_syscall_filter_cb(qemu_plugin_id_t id,
                                                                 qemu_plugin_vcpu_syscall_filter_cb_t cb);
#elif KEEL_QEMU_PLUGIN_API_VERSION >= 7
/** As in v6, plus userdata, without the id, and a signed result. QEMU API: v7 form. */
typedef bool (*qemu_plugin_vcpu_syscall_filter_cb_t)(unsigned int vcpu_index, int64_t num, uint64_t a1,
                                                     uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5,
                                                     uint64_t a6, uint64_t a7, uint64_t a8, int64_t *sysret,
                                                     void *userdata);
QEMU_PLUGIN_API void qemu_plugin_register_vcpu_syscall_filter_cb(qemu_plugin_id_t id,
                                                                 qemu_plugin_vcpu_syscall_filter_cb_t cb,
                                                                 void *userdata);
#endif

/* ---------------------------------------------------------------------------------------------------
 * Instructions: disassembly and symbols
 * ------------------------------------------------------------------------------------------------- */

/** Disassembly of the instruction, newly allocated: release it with g_free(). QEMU API: since v1. */
QEMU_PLUGIN_API char *qemu_plugin_insn_disas(const struct qemu_plugin_insn *insn);

/**
 * Name of the guest symbol the instruction starts, from the loaded ELF's symbol table, or NULL. The
 * string is owned by the emulator. QEMU API: since v1.
 */
QEMU_PLUGIN_API const char *qemu_plugin_insn_symbol(const struct qemu_plugin_insn *insn);

/* ---------------------------------------------------------------------------------------------------
 * Whole-run callbacks and helpers
 * ------------------------------------------------------------------------------------------------- */

/**
 * Calls @cb whenever the emulator throws away all translated code, so the plugin can free what it
 * attached to blocks. All vCPUs are stopped while it runs. QEMU API: since v1; v7 adds userdata.
 */
#if KEEL_QEMU_PLUGIN_API_VERSION <= 6
QEMU_PLUGIN_API void qemu_plugin_register_flush_cb(qemu_plugin_id_t id, qemu_plugin_simple_cb_t cb);
#else
QEMU_PLUGIN_API void qemu_plugin_register_flush_cb(qemu_plugin_id_t id, qemu_plugin_udata_cb_t cb,
                                                   void *userdata);
#endif

/**
 * Calls @cb once when the emulation ends, the place to print results and free everything.
 * QEMU API: since v1 (the callback type changes in v7, see qemu_plugin_udata_cb_t).
 */
QEMU_PLUGIN_API void qemu_plugin_register_atexit_cb(qemu_plugin_id_t id, qemu_plugin_udata_cb_t cb,
                                                    void *userdata);

#if KEEL_QEMU_PLUGIN_API_VERSION == 1
/** vCPUs at start (system emulation), -1 in user mode. QEMU API: v1 only. */
QEMU_PLUGIN_API int qemu_plugin_n_vcpus(void);
/** vCPUs the machine can have (system emulation), -1 in user mode. QEMU API: v1 only. */
QEMU_PLUGIN_API int qemu_plugin_n_max_vcpus(void);
#else
/** vCPUs started so far. QEMU API: since v2. */
QEMU_PLUGIN_API int qemu_plugin_num_vcpus(void);
#endif

/**
 * Writes @string to the emulator's log: stderr, or the -D file, once `-d plugin` is enabled (keel and
 * QEMU 7.2 print nothing without it). QEMU API: since v1.
 */
QEMU_PLUGIN_API void qemu_plugin_outs(const char *string);

/**
 * Parses a boolean argument: true if @val is on/yes/true or off/no/false (storing the value in *@ret),
 * false if it is anything else. @name is the argument's name, before the '='. QEMU API: since v1.
 */
QEMU_PLUGIN_API bool qemu_plugin_bool_parse(const char *name, const char *val, bool *ret);

/** Path of the guest program in user mode (free with g_free()); NULL in system emulation. Since v1. */
QEMU_PLUGIN_API const char *qemu_plugin_path_to_binary(void);
/** Start of the guest program's text segment in user mode; 0 in system emulation. QEMU API: since v1. */
QEMU_PLUGIN_API uint64_t qemu_plugin_start_code(void);
/** End of the guest program's text segment in user mode; 0 in system emulation. QEMU API: since v1. */
QEMU_PLUGIN_API uint64_t qemu_plugin_end_code(void);
/** Entry point of the guest program in user mode; 0 in system emulation. QEMU API: since v1. */
QEMU_PLUGIN_API uint64_t qemu_plugin_entry_code(void);

/* ---------------------------------------------------------------------------------------------------
 * Registers (v2+)
 * ------------------------------------------------------------------------------------------------- */

#if KEEL_QEMU_PLUGIN_API_VERSION >= 2
/** Opaque register handle. QEMU API: since v2. */
struct qemu_plugin_register;

/**
 * One register of the current vCPU, named as gdb names it (e.g. "pc", "a0", "mstatus"). @feature is
 * the gdb target-description feature it belongs to, or NULL. From v6, @is_readonly says that
 * qemu_plugin_write_register cannot change it (pc: use qemu_plugin_set_pc). QEMU API: since v2;
 * is_readonly since v6 (the array element grows from 24 to 32 bytes on 64-bit hosts).
 */
typedef struct {
    struct qemu_plugin_register *handle;
    const char *name;
    const char *feature;
#if KEEL_QEMU_PLUGIN_API_VERSION >= 6
    bool is_readonly;
#endif
} qemu_plugin_reg_descriptor;

/**
 * The current vCPU's registers as a GArray of qemu_plugin_reg_descriptor, possibly empty; free the
 * array (not the strings) with g_array_free. Call it in vCPU context, e.g. from the vCPU init
 * callback. QEMU API: since v2.
 */
QEMU_PLUGIN_API GArray *qemu_plugin_get_registers(void);

/*
 * qemu_plugin_read_register: appends the register's value, in guest byte order, to @buf. Allowed in
 * callbacks registered with QEMU_PLUGIN_CB_R_REGS or more, and in callbacks without flags that run on
 * a vCPU (not atexit or flush). v2-v5 return the size read or -1; v6 returns true on success.
 */
#if KEEL_QEMU_PLUGIN_API_VERSION <= 5
QEMU_PLUGIN_API int qemu_plugin_read_register(struct qemu_plugin_register *handle, GByteArray *buf);
#else
QEMU_PLUGIN_API bool qemu_plugin_read_register(struct qemu_plugin_register *handle, GByteArray *buf);
#endif
#endif

#if KEEL_QEMU_PLUGIN_API_VERSION >= 5
/*
 * qemu_plugin_write_register: sets the register from the first bytes of @buf (guest byte order; @buf
 * must hold at least the register's size). Needs QEMU_PLUGIN_CB_RW_REGS or vCPU context as for reads.
 * v5 returns the bytes written (0 on failure); v6 returns true on success. QEMU API: since v5.
 */
#if KEEL_QEMU_PLUGIN_API_VERSION == 5
QEMU_PLUGIN_API int qemu_plugin_write_register(struct qemu_plugin_register *handle, GByteArray *buf);
#else
QEMU_PLUGIN_API bool qemu_plugin_write_register(struct qemu_plugin_register *handle, GByteArray *buf);
#endif
#endif

#if KEEL_QEMU_PLUGIN_API_VERSION >= 6
/**
 * Makes the current vCPU continue at guest virtual address @vaddr. Only from a callback registered
 * with QEMU_PLUGIN_CB_RW_REGS_PC; it does not return there (execution resumes at @vaddr). QEMU API:
 * since v6 (v7 declares it noreturn).
 */
#if KEEL_QEMU_PLUGIN_API_VERSION >= 7
QEMU_PLUGIN_API __attribute__((__noreturn__)) void qemu_plugin_set_pc(uint64_t vaddr);
#else
QEMU_PLUGIN_API void qemu_plugin_set_pc(uint64_t vaddr);
#endif
#endif

/* ---------------------------------------------------------------------------------------------------
 * Guest memory (v4+)
 * ------------------------------------------------------------------------------------------------- */

#if KEEL_QEMU_PLUGIN_API_VERSION >= 4
/**
 * Reads @len (> 0) bytes at guest virtual address @addr through the current vCPU's MMU into @data
 * (grown as needed). Pending stores of the executing instruction may not be visible yet: use memory
 * callbacks for those. Returns false if any byte is unmapped. QEMU API: since v4.
 */
QEMU_PLUGIN_API bool qemu_plugin_read_memory_vaddr(uint64_t addr, GByteArray *data, size_t len);
#endif

#if KEEL_QEMU_PLUGIN_API_VERSION >= 5
/** Writes @data at guest virtual address @addr; vCPU context only; false on failure. Since v5. */
QEMU_PLUGIN_API bool qemu_plugin_write_memory_vaddr(uint64_t addr, GByteArray *data);

/** Outcome of the guest physical memory accessors. QEMU API: since v5. */
enum qemu_plugin_hwaddr_operation_result {
    QEMU_PLUGIN_HWADDR_OPERATION_OK,
    QEMU_PLUGIN_HWADDR_OPERATION_ERROR,
    QEMU_PLUGIN_HWADDR_OPERATION_DEVICE_ERROR,
    QEMU_PLUGIN_HWADDR_OPERATION_ACCESS_DENIED,
    QEMU_PLUGIN_HWADDR_OPERATION_INVALID_ADDRESS,
    QEMU_PLUGIN_HWADDR_OPERATION_INVALID_ADDRESS_SPACE,
};

/** Reads @len (> 0) bytes at guest physical address @addr into @data. QEMU API: since v5. */
QEMU_PLUGIN_API enum qemu_plugin_hwaddr_operation_result
qemu_plugin_read_memory_hwaddr(uint64_t addr, GByteArray *data, size_t len);

/**
 * Writes @data at guest physical address @addr. Do not patch the block being translated from a
 * translation callback; from an execution callback the write takes effect after the current block.
 * QEMU API: since v5.
 */
QEMU_PLUGIN_API enum qemu_plugin_hwaddr_operation_result qemu_plugin_write_memory_hwaddr(uint64_t addr,
                                                                                         GByteArray *data);

/** Translates @vaddr through the current vCPU's MMU into *@hwaddr; false if unmapped. Since v5. */
QEMU_PLUGIN_API bool qemu_plugin_translate_vaddr(uint64_t vaddr, uint64_t *hwaddr);
#endif

/* ---------------------------------------------------------------------------------------------------
 * Scoreboards (v2+)
 * ------------------------------------------------------------------------------------------------- */

#if KEEL_QEMU_PLUGIN_API_VERSION >= 2
/** A new zeroed scoreboard with one @element_size entry per vCPU; free with _free. QEMU API: since v2. */
QEMU_PLUGIN_API struct qemu_plugin_scoreboard *qemu_plugin_scoreboard_new(size_t element_size);

/** Frees a scoreboard. QEMU API: since v2. */
QEMU_PLUGIN_API void qemu_plugin_scoreboard_free(struct qemu_plugin_scoreboard *score);

/** The entry of vCPU @vcpu_index; the address may change when the scoreboard grows. Since v2. */
QEMU_PLUGIN_API void *qemu_plugin_scoreboard_find(struct qemu_plugin_scoreboard *score,
                                                  unsigned int vcpu_index);

/* qemu_plugin_u64 for a scoreboard of plain uint64_t, or for a uint64_t member of a struct entry. */
#ifdef __cplusplus
#define qemu_plugin_scoreboard_u64(score) (qemu_plugin_u64{(score), 0})
#define qemu_plugin_scoreboard_u64_in_struct(score, type, member) \
    (qemu_plugin_u64{(score), offsetof(type, member)})
#else
#define qemu_plugin_scoreboard_u64(score) ((qemu_plugin_u64){(score), 0})
#define qemu_plugin_scoreboard_u64_in_struct(score, type, member) \
    ((qemu_plugin_u64){(score), offsetof(type, member)})
#endif

/** Adds @added to vCPU @vcpu_index's value of @entry. QEMU API: since v2. */
QEMU_PLUGIN_API void qemu_plugin_u64_add(qemu_plugin_u64 entry, unsigned int vcpu_index, uint64_t added);
/** vCPU @vcpu_index's value of @entry. QEMU API: since v2. */
QEMU_PLUGIN_API uint64_t qemu_plugin_u64_get(qemu_plugin_u64 entry, unsigned int vcpu_index);
/** Sets vCPU @vcpu_index's value of @entry. QEMU API: since v2. */
QEMU_PLUGIN_API void qemu_plugin_u64_set(qemu_plugin_u64 entry, unsigned int vcpu_index, uint64_t val);
/** Sum of @entry over all vCPUs. QEMU API: since v2. */
QEMU_PLUGIN_API uint64_t qemu_plugin_u64_sum(qemu_plugin_u64 entry);
#endif

#ifdef __cplusplus
}
#endif

#endif /* KEEL_QEMU_PLUGIN_H */
