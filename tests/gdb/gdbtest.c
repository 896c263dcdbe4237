// SPDX-License-Identifier: MIT
// The guest the gdb tests debug (built with -g -O0): it waits until the debugger sets `go` (and the n_harts -
// 1 other harts are up), stops by itself in check_point(), steps through step_test() and stores to `watched`;
// it exits with 7 when the store happened, 1 otherwise.
#include <stdint.h>

volatile uint64_t array[4] = {0x1111111111111111ull, 0x2222222222222222ull, 0x3333333333333333ull,
                              0x4444444444444444ull};
volatile uint64_t watched;
volatile uint64_t go;
volatile uint64_t spins;
volatile uint64_t harts_up;    // secondary harts that reached their loop
volatile uint64_t n_harts = 1; // the debugger sets it for -smp
volatile uint64_t paging;      // the debugger sets it: end in S mode under Sv39 (enter_paged)

void step_test(void);
void store_word(volatile uint64_t *p, uint64_t v);
__attribute__((noreturn)) void enter_paged(void);

void __attribute__((noinline)) spin_once(void)
{
    spins++;
}

void __attribute__((noinline)) check_point(uint64_t magic)
{
    array[3] += magic - magic;
}

int main(void)
{
    while (!go || harts_up + 1 < n_harts)
        spin_once();
    check_point(0xfeedface12345678ull);
    step_test();
    store_word(&watched, 0x55);
    if (paging) enter_paged();
    return watched == 0x55 ? 7 : 1;
}
