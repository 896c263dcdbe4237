// SPDX-License-Identifier: MIT
// The ALU semantics of keel IR (total: defined for every input), for 32- and 64-bit unsigned carriers.
#pragma once

#include <bit>
#include <cstdint>
#include <limits>
#include <type_traits>

namespace keel::tci::alu
{

template <typename U> using S = std::make_signed_t<U>;
template <typename U> constexpr unsigned kBits = sizeof(U) * 8;

template <typename U> inline U mulhs(U a, U b)
{
    if constexpr (sizeof(U) == 8) {
        return static_cast<U>(static_cast<unsigned __int128>(static_cast<__int128>(static_cast<int64_t>(a)) *
                                                             static_cast<int64_t>(b)) >>
                              64);
    } else {
        return static_cast<U>(
            static_cast<uint64_t>(static_cast<int64_t>(static_cast<int32_t>(a)) * static_cast<int32_t>(b)) >>
            32);
    }
}
template <typename U> inline U mulhu(U a, U b)
{
    if constexpr (sizeof(U) == 8) {
        return static_cast<U>((static_cast<unsigned __int128>(a) * b) >> 64);
    } else {
        return static_cast<U>((static_cast<uint64_t>(a) * b) >> 32);
    }
}
template <typename U> inline U mulhsu(U a, U b)
{
    if constexpr (sizeof(U) == 8) {
        __int128 p = static_cast<__int128>(static_cast<int64_t>(a)) * static_cast<__int128>(b);
        return static_cast<U>(static_cast<unsigned __int128>(p) >> 64);
    } else {
        int64_t p = static_cast<int64_t>(static_cast<int32_t>(a)) * static_cast<int64_t>(b);
        return static_cast<U>(static_cast<uint64_t>(p) >> 32);
    }
}
// Division by zero and MIN / -1 as RISC-V defines them.
template <typename U> inline U divs(U a, U b)
{
    if (b == 0) return ~U(0);
    if (a == (U(1) << (kBits<U> - 1)) && b == ~U(0)) return a;
    return static_cast<U>(static_cast<S<U>>(a) / static_cast<S<U>>(b));
}
template <typename U> inline U divu(U a, U b)
{
    return b == 0 ? ~U(0) : a / b;
}
template <typename U> inline U rems(U a, U b)
{
    if (b == 0) return a;
    if (a == (U(1) << (kBits<U> - 1)) && b == ~U(0)) return 0;
    return static_cast<U>(static_cast<S<U>>(a) % static_cast<S<U>>(b));
}
template <typename U> inline U remu(U a, U b)
{
    return b == 0 ? a : a % b;
}
template <typename U> inline U shl(U a, U b)
{
    return a << (b & (kBits<U> - 1));
}
template <typename U> inline U shr(U a, U b)
{
    return a >> (b & (kBits<U> - 1));
}
template <typename U> inline U sar(U a, U b)
{
    return static_cast<U>(static_cast<S<U>>(a) >> (b & (kBits<U> - 1)));
}
template <typename U> inline U rotl(U a, U b)
{
    return std::rotl(a, static_cast<int>(b & (kBits<U> - 1)));
}
template <typename U> inline U rotr(U a, U b)
{
    return std::rotr(a, static_cast<int>(b & (kBits<U> - 1)));
}
template <typename U> inline U mins(U a, U b)
{
    return static_cast<S<U>>(a) < static_cast<S<U>>(b) ? a : b;
}
template <typename U> inline U maxs(U a, U b)
{
    return static_cast<S<U>>(a) > static_cast<S<U>>(b) ? a : b;
}
template <typename U> inline U minu(U a, U b)
{
    return a < b ? a : b;
}
template <typename U> inline U maxu(U a, U b)
{
    return a > b ? a : b;
}
template <typename U> inline U bswap(U a)
{
    if constexpr (sizeof(U) == 8) {
        return __builtin_bswap64(a);
    } else {
        return __builtin_bswap32(a);
    }
}
template <typename U, typename T> inline U exts(U a)
{
    return static_cast<U>(static_cast<S<U>>(static_cast<std::make_signed_t<T>>(static_cast<T>(a))));
}
template <typename U, typename T> inline U extu(U a)
{
    return static_cast<U>(static_cast<T>(a));
}

// Conditions of setcond/movcond/brcond, in KeelIrCond order.
template <typename U> inline bool cond(unsigned c, U a, U b)
{
    switch (c) {
    case 0:
        return a == b;
    case 1:
        return a != b;
    case 2:
        return static_cast<S<U>>(a) < static_cast<S<U>>(b);
    case 3:
        return static_cast<S<U>>(a) >= static_cast<S<U>>(b);
    case 4:
        return static_cast<S<U>>(a) <= static_cast<S<U>>(b);
    case 5:
        return static_cast<S<U>>(a) > static_cast<S<U>>(b);
    case 6:
        return a < b;
    case 7:
        return a >= b;
    case 8:
        return a <= b;
    default:
        return a > b;
    }
}

} // namespace keel::tci::alu
