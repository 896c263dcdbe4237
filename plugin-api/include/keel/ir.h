/* SPDX-License-Identifier: MIT */
/* keel IR: what a CPU module's translator emits and what every accelerator runs. */
#ifndef KEEL_IR_H
#define KEEL_IR_H

#include <keel/common.h>

KEEL_EXTERN_C_BEGIN

/*
 * The IR in one page
 * ------------------
 * A translation block (TB) is a straight-line list of IR operations with
 * forward and backward branches to labels inside the block. Its values are
 * variables, not SSA: an operation reads its inputs, then writes its
 * destination (which may be one of the inputs).
 *
 * Values (KeelIrValue) are
 *  - temporaries, created per block with temp(); they keep their value
 *    across labels and branches, and die at the end of the block;
 *  - constants, from const_int() / const_ptr();
 *  - globals: fields of the CPU state declared by the CPU module
 *    (KeelIrGlobal, e.g. the integer registers and the pc). Reading a global
 *    reads the state; writing it writes the state. An engine may cache them
 *    in host registers inside a block, and writes them back before helper
 *    calls that access globals, before memory operations that may fault, and
 *    at block exits;
 *  - the environment pointer, env(): the CPU's instance state, of type PTR.
 *
 * Every value has one type; every operation states which types it takes,
 * and the verifier rejects a block that mixes them.
 *
 * Every guest instruction starts with insn_start(pc, length). Every guest
 * memory access is exactly one load() or store(). Instrumentation (plugins,
 * watchpoints) attaches to those two facts and to nothing else.
 *
 * A block ends with exactly one exit on every path: goto_tb(n) (continue at
 * the pc held in the pc global; the engine may chain the two blocks
 * directly, n is 0 or 1), lookup_and_goto() (indirect jumps: find the block
 * for the pc and continue), or exit_tb() (back to the execution loop, which
 * then checks interrupts and requests). goto_tb is only used for a
 * destination in the same guest page as the block's first instruction, so a
 * chained jump never outlives the mapping it was made under.
 *
 * Exceptions never unwind the host stack. A memory operation that faults, or
 * a KEEL_HELPER_MAY_RAISE helper that recorded a guest exception (it sets
 * KeelCpuCommon.exception and returns), makes the engine leave the block at
 * once: it stores the pc of the current instruction (from insn_start) into
 * the CPU's pc global, writes back cached globals, and returns to the
 * execution loop, which calls KeelCpuOps.exec_exception. Everything the
 * instruction wrote before the fault stays written, so a translator emits an
 * instruction's guest-visible writes after its last operation that may fault.
 *
 * Instrumentation (plugins, inline counters) is inserted after translation
 * through the cursor operations: emission normally appends; after
 * set_cursor() it inserts before an instruction or before/after one of its
 * memory operations, so both engines run plugins with no special paths.
 */

/** Value types. Since: ABI 1.0 */
typedef enum KeelIrType {
    KEEL_IR_I32 = 0,
    KEEL_IR_I64 = 1,
    KEEL_IR_F32 = 2, /* bits only: moves, loads/stores, bitcasts and helper arguments */
    KEEL_IR_F64 = 3,
    KEEL_IR_PTR = 4, /* a host pointer (env, plugin data) */
} KeelIrType;

/** A value: temporary, constant, global or env. 0 is "no value". Since: ABI 1.0 */
typedef uint32_t KeelIrValue;
/** A branch target inside the block. Since: ABI 1.0 */
typedef uint32_t KeelIrLabel;

/**
 * Unary and binary operations: X(NAME, number of inputs). All inputs and the
 * result have the type of the result, except where noted. Semantics are total:
 * no operation is undefined for any input.
 *
 *  MOV        d = a
 *  ADD SUB MUL                         wrap around
 *  MULHS MULHU MULHSU                  high half of the double-width product
 *                                      (signed*signed, unsigned*unsigned, signed*unsigned)
 *  DIVS DIVU REMS REMU                 RISC-V semantics: x/0 = all ones (DIVU) or -1 (DIVS),
 *                                      x%0 = x, MIN/-1 = MIN, MIN%-1 = 0
 *  AND OR XOR ANDC(a&~b) ORC(a|~b) XNOR NOT NEG
 *  SHL SHR(logical) SAR ROTL ROTR      the count is taken modulo the width
 *  CLZ CTZ                             of 0: the width
 *  CTPOP BSWAP
 *  EXT8S EXT8U EXT16S EXT16U EXT32S EXT32U   extend the low bits, same type (EXT32* only on I64)
 *  EXTS_I32_I64 EXTU_I32_I64           I32 input, I64 result
 *  TRUNC_I64_I32                       I64 input, I32 result
 *  BITCAST                             I32<->F32, I64<->F64, same bits
 *  MINS MINU MAXS MAXU                 signed/unsigned minimum and maximum
 * Since: ABI 1.0
 */
/* clang-format off */
#define KEEL_IR_ALU_OPS(X)                                                                                       \
    X(MOV, 1)                                                                                                    \
    X(ADD, 2) X(SUB, 2) X(MUL, 2) X(MULHS, 2) X(MULHU, 2) X(MULHSU, 2) X(DIVS, 2) X(DIVU, 2) X(REMS, 2)        \
    X(REMU, 2) X(AND, 2) X(OR, 2) X(XOR, 2) X(ANDC, 2) X(ORC, 2) X(XNOR, 2) X(NOT, 1) X(NEG, 1) X(SHL, 2)      \
    X(SHR, 2) X(SAR, 2) X(ROTL, 2) X(ROTR, 2) X(CLZ, 1) X(CTZ, 1) X(CTPOP, 1) X(BSWAP, 1) X(EXT8S, 1)         \
    X(EXT8U, 1) X(EXT16S, 1) X(EXT16U, 1) X(EXT32S, 1) X(EXT32U, 1) X(EXTS_I32_I64, 1) X(EXTU_I32_I64, 1)     \
    X(TRUNC_I64_I32, 1) X(BITCAST, 1) X(MINS, 2) X(MINU, 2) X(MAXS, 2) X(MAXU, 2)
/* clang-format on */

/** The ALU operations, numbered in list order. Since: ABI 1.0 */
typedef enum KeelIrAluOp {
#define KEEL_IR_ENUM_(name, n) KEEL_IR_##name,
    KEEL_IR_ALU_OPS(KEEL_IR_ENUM_)
#undef KEEL_IR_ENUM_
        KEEL_IR_ALU_COUNT
} KeelIrAluOp;

/** Comparisons for setcond, movcond and brcond. Since: ABI 1.0 */
typedef enum KeelIrCond {
    KEEL_IR_EQ = 0,
    KEEL_IR_NE,
    KEEL_IR_LT, /* signed */
    KEEL_IR_GE,
    KEEL_IR_LE,
    KEEL_IR_GT,
    KEEL_IR_LTU, /* unsigned */
    KEEL_IR_GEU,
    KEEL_IR_LEU,
    KEEL_IR_GTU,
} KeelIrCond;

/**
 * KeelIrMemOp: how a load or store accesses memory.
 * Bits 0-1: log2 of the size (KEEL_MO_8 ... KEEL_MO_64); KEEL_MO_SIGN: sign-
 * extend a load to the destination's width; KEEL_MO_ALIGN: fault if the
 * address is not a multiple of the size (otherwise misaligned accesses are
 * performed, split if they cross a page). Guest memory is little-endian.
 * Since: ABI 1.0
 */
typedef uint32_t KeelIrMemOp;
#define KEEL_MO_8 0u
#define KEEL_MO_16 1u
#define KEEL_MO_32 2u
#define KEEL_MO_64 3u
#define KEEL_MO_SIZE_MASK 3u
#define KEEL_MO_SIGN (1u << 2)
#define KEEL_MO_ALIGN (1u << 3)
/* the load of a read-modify-write (atomics, store-conditional): the address
   is translated for writing, so the page must be writable before anything is
   read, and faults (alignment included) are reported as store faults */
#define KEEL_MO_RMW (1u << 4)

/** Helper flags: what an engine may assume about a helper call. Since: ABI 1.0 */
enum {
    KEEL_HELPER_PURE = 1u << 0,           /* no side effects; result depends on arguments only */
    KEEL_HELPER_READS_GLOBALS = 1u << 1,  /* reads globals through env: they are written back first */
    KEEL_HELPER_WRITES_GLOBALS = 1u << 2, /* writes globals through env: cached copies are dropped after */
    KEEL_HELPER_MAY_RAISE = 1u << 3, /* may record a guest exception (KeelCpuCommon.exception) and return;
                                        the engine then leaves the block (see above) */
};

/**
 * KeelIrHelper: a C function the IR may call, with its signature declared
 * so that any engine can call it (the interpreter through libffi, a JIT
 * directly). Arguments and result are passed as the C types uint32_t
 * (I32), uint64_t (I64), float (F32), double (F64), void * (PTR). Helpers
 * that must keep NaN payloads exact take and return the bits as I32/I64.
 *
 * @name: for logs and -d op.
 * @fn: the function, cast to void (*)(void).
 * @ret: result type, if @has_ret.
 * @nargs, @args: up to KEEL_IR_MAX_HELPER_ARGS argument types.
 * @flags: KEEL_HELPER_*.
 * Since: ABI 1.0
 */
#define KEEL_IR_MAX_HELPER_ARGS 7
typedef struct KeelIrHelper {
    const char *name;
    void (*fn)(void);
    uint8_t has_ret;
    uint8_t ret;
    uint8_t nargs;
    uint8_t args[KEEL_IR_MAX_HELPER_ARGS];
    uint32_t flags;
    void *reserved[2];
} KeelIrHelper;

/**
 * KeelIrGlobal: a field of the CPU state that the IR names directly.
 * @name: as shown in -d op ("x5", "pc").
 * @offset: byte offset in the CPU's instance state.
 * @type: KEEL_IR_I32 or KEEL_IR_I64 (or F32/F64).
 * Since: ABI 1.0
 */
typedef struct KeelIrGlobal {
    const char *name;
    size_t offset;
    KeelIrType type;
} KeelIrGlobal;

/** Insertion points for instrumentation (KeelIrBuilderOps.set_cursor). Since: ABI 1.0 */
typedef enum KeelIrCursor {
    KEEL_IR_AT_END = 0,      /* append (the default) */
    KEEL_IR_BEFORE_INSN = 1, /* right after the insn_start of instruction @insn */
    KEEL_IR_BEFORE_MEM = 2,  /* before memory operation @k of instruction @insn */
    KEEL_IR_AFTER_MEM = 3,   /* after memory operation @k of instruction @insn */
} KeelIrCursor;

/** The block under construction; opaque. Since: ABI 1.0 */
typedef struct KeelIrBuilder KeelIrBuilder;

/**
 * KeelIrBuilderOps: how a translator emits IR. Handed to the CPU's translate
 * hook together with the builder. Emission never fails: misuse (wrong types,
 * unknown values, a label set twice) is recorded and the block is rejected
 * by the verifier; the engine logs the message and the block's IR and stops
 * with an internal error (a translator bug is never the guest's fault).
 * Since: ABI 1.0
 */
typedef struct KeelIrBuilderOps {
    size_t size;

    /* values */
    KeelIrValue (*temp)(KeelIrBuilder *b, KeelIrType type);
    KeelIrValue (*const_int)(KeelIrBuilder *b, KeelIrType type, uint64_t value); /* I32 uses the low bits */
    KeelIrValue (*const_ptr)(KeelIrBuilder *b, const void *ptr);
    KeelIrValue (*global)(KeelIrBuilder *b, unsigned index); /* index into the CPU's globals */
    KeelIrValue (*env)(KeelIrBuilder *b);

    /* computation */
    void (*alu)(KeelIrBuilder *b, KeelIrAluOp op, KeelIrValue dst, KeelIrValue a, KeelIrValue c);
    /* dst = (a cond c) ? 1 : 0; dst may be I32 or I64, a and c share a type */
    void (*setcond)(KeelIrBuilder *b, KeelIrCond cond, KeelIrValue dst, KeelIrValue a, KeelIrValue c);
    /* dst = (a cond c) ? vt : vf */
    void (*movcond)(KeelIrBuilder *b, KeelIrCond cond, KeelIrValue dst, KeelIrValue a, KeelIrValue c,
                    KeelIrValue vt, KeelIrValue vf);

    /* guest memory: one call per guest access; @addr is an I64 virtual address */
    void (*load)(KeelIrBuilder *b, KeelIrValue dst, KeelIrValue addr, KeelIrMemOp mop, unsigned mmu_idx);
    void (*store)(KeelIrBuilder *b, KeelIrValue val, KeelIrValue addr, KeelIrMemOp mop, unsigned mmu_idx);
    /* host memory at @base (PTR) + @offset: CPU state fields, plugin counters */
    void (*load_host)(KeelIrBuilder *b, KeelIrValue dst, KeelIrValue base, int64_t offset, KeelIrMemOp mop);
    void (*store_host)(KeelIrBuilder *b, KeelIrValue val, KeelIrValue base, int64_t offset, KeelIrMemOp mop);

    /* control flow inside the block */
    KeelIrLabel (*label)(KeelIrBuilder *b);
    void (*set_label)(KeelIrBuilder *b, KeelIrLabel l);
    void (*br)(KeelIrBuilder *b, KeelIrLabel l);
    void (*brcond)(KeelIrBuilder *b, KeelIrCond cond, KeelIrValue a, KeelIrValue c, KeelIrLabel l);

    /* helper calls; @dst is 0 when the helper returns nothing */
    void (*call)(KeelIrBuilder *b, const KeelIrHelper *h, KeelIrValue dst, const KeelIrValue *args,
                 unsigned nargs);

    /* structure */
    /* start of a guest instruction: its pc, length in bytes and raw bits */
    void (*insn_start)(KeelIrBuilder *b, uint64_t pc, unsigned len, uint32_t raw);
    void (*goto_tb)(KeelIrBuilder *b, unsigned slot);
    void (*lookup_and_goto)(KeelIrBuilder *b);
    void (*exit_tb)(KeelIrBuilder *b);

    /*
     * Guest code for the translator: read @len bytes (1 to 4) of instruction
     * memory at virtual address @pc with the block's MMU index (bits 0-2 of
     * the block's flags). KEEL_OK, or KEEL_ERR if the fetch would fault (no
     * exception is recorded): the translator then ends the block before this
     * instruction. The engine has already fetched the first byte of the block
     * successfully; an instruction that starts the block and crosses into a
     * page that faults is the translator's to raise (by a helper).
     * Fetching from a page marks it as holding code: writes to it invalidate
     * the blocks translated from it.
     */
    int (*fetch)(KeelIrBuilder *b, uint64_t pc, unsigned len, uint32_t *bits);

    /* --- instrumentation: after translation, before the block runs --- */
    /* guest instructions in the block (insn_start markers) */
    unsigned (*num_insns)(KeelIrBuilder *b);
    /* facts of instruction @insn; @n_mem: its guest memory operations */
    void (*insn_info)(KeelIrBuilder *b, unsigned insn, uint64_t *pc, unsigned *len, uint32_t *raw,
                      unsigned *n_mem);
    /* facts of memory operation @k of instruction @insn: its memop, whether it
       stores, its MMU index, and the address value (only valid before it) */
    void (*mem_info)(KeelIrBuilder *b, unsigned insn, unsigned k, KeelIrMemOp *mop, int *is_store,
                     unsigned *mmu_idx, KeelIrValue *addr);
    /* where the next emitted operations go; KEEL_IR_AT_END restores appending */
    void (*set_cursor)(KeelIrBuilder *b, KeelIrCursor where, unsigned insn, unsigned k);

    /* the value memory operation @k of instruction @insn loads (its destination, as extended) or stores,
       and its type: read it right after the operation (KEEL_IR_AFTER_MEM), e.g. for plugins' memory
       callbacks. Since: ABI 1.2 */
    void (*mem_value)(KeelIrBuilder *b, unsigned insn, unsigned k, KeelIrValue *value, KeelIrType *type);

    void *reserved[7];
} KeelIrBuilderOps;

KEEL_EXTERN_C_END

#endif /* KEEL_IR_H */
