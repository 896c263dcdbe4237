#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# tests/sdk: one step of the installed-SDK test (see CMakeLists.txt). Each step works in $SDK_WORK/<step>
# with its own HOME, so the user's ~/.local/lib/keel and ~/.cache never take part.
set -euo pipefail
step=$1
P=$SDK_WORK/prefix
W=$SDK_WORK/$step
EX=$KEEL_SOURCE_DIR/examples/out-of-tree
ABI=$(sed -n 's/^#define KEEL_ABI_MAJOR \([0-9]*\)$/\1/p' "$KEEL_SOURCE_DIR/plugin-api/include/keel/common.h").$(
  sed -n 's/^#define KEEL_ABI_MINOR \([0-9]*\)$/\1/p' "$KEEL_SOURCE_DIR/plugin-api/include/keel/common.h")
[ -d "$W" ] && chmod -R u+w "$W"
rm -rf "$W"
mkdir -p "$W/home"
export HOME=$W/home XDG_CACHE_HOME=$W/home/.cache KEEL_MODULE_PATH=
unset PKG_CONFIG_PATH
cd "$W"

fail() { echo "FAIL ($step): $*" >&2; exit 1; }
has() { grep -qF -- "$2" <<<"$1" || fail "expected '$2' in:"$'\n'"$1"; }
lacks() { ! grep -qF -- "$2" <<<"$1" || fail "did not expect '$2' in:"$'\n'"$1"; }
# run STATUS CMD...: run it, check its exit status, leave stdout in $out and stderr in $err.
run() {
  local want=$1 rc=0
  shift
  timeout 60 "$@" >"$W/out" 2>"$W/err" || rc=$?
  out=$(cat "$W/out")
  err=$(cat "$W/err")
  [ "$rc" = "$want" ] || fail "$* exited with $rc, expected $want"$'\n'"stdout: $out"$'\n'"stderr: $err"
}
# guest OUT.elf [-DNAME=VALUE...]: the tutorial's guest program, with the tutorial's command line.
guest() {
  local o=$1
  shift
  "$SDK_GUEST_CC" -march=rv64imac_zicsr -mabi=lp64 -mcmodel=medany -O2 -ffreestanding -nostdlib \
    -Wall -Wextra -Werror -Wl,-Ttext-segment=0x80000000 "$@" -o "$o" "$EX/crc32/crc32-test.c"
}
[ "$step" = install ] || [ "$step" = deb ] || [ -x "$P/bin/keel" ] || fail "no install in $P (sdk.install)"

case $step in
install)
  rm -rf "$P"
  run 0 "$CMAKE_COMMAND" --install "$KEEL_BUILD_DIR" --prefix "$P"
  for f in bin/keel bin/keel-img lib/keel/modules.index lib/keel/device/libkeel-device-ns16550a.so \
    lib/keel/device/libkeel-device-riscv-cpu.so lib/keel/accel/libkeel-accel-tci.so \
    lib/keel/machine/libkeel-machine-riscv-generic.so lib/keel/block/libkeel-block-qcow2.so \
    include/keel/module.h include/keel/keel.h include/keel/cxx/device.hpp lib/pkgconfig/keel-plugin.pc \
    lib/cmake/Keel/KeelConfig.cmake lib/cmake/Keel/KeelConfigVersion.cmake lib/cmake/Keel/KeelModule.cmake \
    lib/cmake/Keel/KeelTargets.cmake share/keel/configs/riscv-virt.yaml share/keel/configs/examples/dual-uart.yaml \
    share/doc/keel/writing-a-device.md share/doc/keel/abi-policy.md share/doc/keel/examples/out-of-tree/crc32/crc32.c; do
    [ -e "$P/$f" ] || fail "cmake --install did not install $f"
  done
  # Exactly keel's modules: what the build put in lib/keel, nothing of the test suite.
  built=$(cd "$KEEL_BUILD_DIR/lib/keel" && find . -name 'libkeel-*.so' | sort)
  installed=$(cd "$P/lib/keel" && find . -name 'libkeel-*.so' | sort)
  [ "$built" = "$installed" ] || fail "installed modules differ from the built ones:"$'\n'"$installed"$'\n'"vs"$'\n'"$built"
  n=$(wc -l <<<"$installed")
  # Nothing but keel's public headers.
  [ -z "$(find "$P/include" -type f ! -path "$P/include/keel/*")" ] || fail "files outside include/keel"
  # The index names modules relative to its directory, so it survives a move.
  ! grep -q $'^module\t/' "$P/lib/keel/modules.index" || fail "absolute path in the installed index"
  [ "$(grep -c $'^module\t' "$P/lib/keel/modules.index")" = "$n" ] || fail "the index does not list $n modules"
  # A moved, read-only copy of the prefix: keel finds modules and boards relative to itself, and the
  # index installed with it is still valid (no rescan, nothing written to the cache).
  cp -a "$P" "$W/moved"
  chmod -R a-w "$W/moved/lib/keel"
  run 0 "$W/moved/bin/keel" --list-modules
  has "$out" "$W/moved/lib/keel (keel's prefix): $n module(s)"
  has "$out" "$W/moved/lib/keel/device/libkeel-device-ns16550a.so (keel's prefix)"
  has "$out" "$HOME/.local/lib/keel (user, ~/.local/lib/keel): not present"
  lacks "$out" "Refused"
  lacks "$out" "$P/"
  [ ! -e "$XDG_CACHE_HOME/keel" ] || fail "the installed index was valid, yet keel wrote $(ls -R "$XDG_CACHE_HOME")"
  run 0 "$W/moved/bin/keel" -M riscv-virt -bios none -kernel "$KEEL_BUILD_DIR/tests/guest/hello.elf"
  has "$out" "Hello from keel"
  run 0 "$W/moved/bin/keel-img" --help
  run 0 "$W/moved/bin/keel" --help
  has "$out" "--list-modules"
  chmod -R u+w "$W/moved"
  ;;

headers)
  # Every public header alone, in C11 and C++17, warning-free with -pedantic; none reaches into kernel/.
  glib=$(pkg-config --cflags glib-2.0 | sed 's/-I/-isystem /g')
  count=0
  for h in "$P"/include/keel/*.h "$P"/include/keel/cxx/*.hpp; do
    rel=${h#"$P/include/"}
    extra=
    [ "$rel" = keel/qemu-plugin.h ] && extra=$glib # QEMU's plugin API is glib-based, as QEMU's own header
    if grep -nE '^[[:space:]]*#[[:space:]]*include[[:space:]]*"|kernel/' "$h"; then fail "$rel includes something private"; fi
    grep -E '^[[:space:]]*#[[:space:]]*include' "$h" | grep -vqE '<(keel/[a-z0-9/-]+\.h(pp)?|std[a-z]+\.h|inttypes\.h|glib\.h|[a-z_]+)>' &&
      fail "$rel includes a header that is neither keel's nor the standard library's"
    if [ "${h%.hpp}" = "$h" ]; then
      echo "#include <$rel>" | "$CC" -std=c11 -Wall -Wextra -Werror -pedantic -fsyntax-only -I"$P/include" $extra -x c - ||
        fail "$rel does not compile alone as C11"
    fi
    echo "#include <$rel>" | "$CXX" -std=c++17 -Wall -Wextra -Werror -pedantic -fsyntax-only -I"$P/include" $extra -x c++ - ||
      fail "$rel does not compile alone as C++17"
    count=$((count + 1))
  done
  [ "$count" -ge 18 ] || fail "only $count headers installed"
  echo "$count headers compile alone"
  ;;

find-package)
  # docs/writing-a-device.md, with nothing but find_package(Keel): configure, build, install to ~/.local.
  cp -r "$EX/crc32" "$W/crc32"
  cd "$W/crc32"
  run 0 "$CMAKE_COMMAND" -S . -B build -G Ninja -DCMAKE_PREFIX_PATH="$P"
  run 0 "$CMAKE_COMMAND" --build build -j2
  [ -f build/lib/keel/device/libkeel-device-crc32-dma.so ] || fail "no build/lib/keel/device/libkeel-device-crc32-dma.so"
  run 0 "$CMAKE_COMMAND" --install build --prefix "$HOME/.local"
  [ -f "$HOME/.local/lib/keel/device/libkeel-device-crc32-dma.so" ] || fail "not installed into ~/.local/lib/keel/device"
  guest crc32-test.elf
  run 0 "$P/bin/keel" --list-modules
  has "$out" "crc32-dma        device   1.0.0     $ABI   $HOME/.local/lib/keel/device/libkeel-device-crc32-dma.so (user, ~/.local/lib/keel)"
  has "$out" "    type crc32-dma"
  run 0 "$P/bin/keel" -device crc32-dma,help
  has "$out" "max-length=<size>"
  has "$out" "seed=<uint>"
  run 0 "$P/bin/keel" -M board.yaml -bios none -kernel crc32-test.elf
  has "$out" "crc32-test: crc32-dma"
  has "$out" "crc32-test: ok"
  # A property the manifest cannot set is refused against the schema, naming the file.
  sed 's/max-length: 4K/max-length: 0/' board.yaml >bad.yaml
  run 1 "$P/bin/keel" -M bad.yaml -bios none -kernel crc32-test.elf
  has "$err" "bad.yaml"
  has "$err" "max-length"
  # The guest checks max-length for real: with a bigger one its over-long transfer no longer fails.
  sed 's/max-length: 4K/max-length: 8K/' board.yaml >big.yaml
  run 9 "$P/bin/keel" -M big.yaml -bios none -kernel crc32-test.elf
  has "$out" "check 09 failed: STATUS is 0x00000001, expected 0x00000003"
  ;;

pkg-config)
  # The same device with nothing but pkg-config, dropped into a KEEL_MODULE_PATH directory that keel has
  # already indexed: found without --rebuild-index, and found again when it changes.
  export PKG_CONFIG_PATH=$P/lib/pkgconfig
  run 0 pkg-config --modversion keel-plugin
  has "$out" "0.1.0"
  [ "$(pkg-config --variable=abi_major keel-plugin).$(pkg-config --variable=abi_minor keel-plugin)" = "$ABI" ] ||
    fail "keel-plugin.pc's ABI is not $ABI"
  M=$W/modules
  mkdir -p "$M/device"
  export KEEL_MODULE_PATH=$M
  run 0 "$P/bin/keel" --list-modules
  has "$out" "$M (KEEL_MODULE_PATH): 0 module(s)"
  build() {
    # shellcheck disable=SC2046
    "$CC" -shared -fPIC -O2 -Wall -Wextra -Werror $(pkg-config --cflags keel-plugin) "$@" "$EX/crc32/crc32.c" \
      $(pkg-config --libs keel-plugin) -o "$W/new.so"
    mv "$W/new.so" "$M/device/libkeel-device-crc32-dma.so"
  }
  build
  [ "$(nm -D --defined-only "$M/device/libkeel-device-crc32-dma.so" | awk '{print $3}')" = keel_module_info ] ||
    fail "the module exports more than keel_module_info"
  run 0 "$P/bin/keel" --list-modules
  has "$out" "crc32-dma        device   1.0.0     $ABI   $M/device/libkeel-device-crc32-dma.so (KEEL_MODULE_PATH)"
  grep -q "device/libkeel-device-crc32-dma.so" "$M/modules.index" || fail "the index was not updated"
  guest crc32-test.elf
  run 0 "$P/bin/keel" -M "$EX/crc32/board.yaml" -bios none -kernel crc32-test.elf
  has "$out" "crc32-test: ok"
  build -DCRC32_VERSION='"1.0.1"'
  run 0 "$P/bin/keel" --list-modules
  has "$out" "crc32-dma        device   1.0.1     $ABI   $M/device/libkeel-device-crc32-dma.so (KEEL_MODULE_PATH)"
  lacks "$out" "crc32-dma        device   1.0.0"
  lacks "$out" "Refused"
  ;;

cxx)
  # The C++ device (header-only helpers), built with its pkg-config-only CMakeLists, run by the same guest
  # program built for CRC-32C.
  export PKG_CONFIG_PATH=$P/lib/pkgconfig
  cp -r "$EX/crc32c-cxx" "$W/crc32c-cxx"
  cd "$W/crc32c-cxx"
  run 0 "$CMAKE_COMMAND" -S . -B build -G Ninja
  run 0 "$CMAKE_COMMAND" --build build -j2
  export KEEL_MODULE_PATH=$W/crc32c-cxx/build
  [ "$(nm -D --defined-only build/libkeel-device-crc32c-dma.so | awk '{print $3}')" = keel_module_info ] ||
    fail "the module exports more than keel_module_info"
  guest crc32c-test.elf -DPOLY=0x82F63B78u -DKNOWN=0xE3069283u -DDEVNAME='"crc32c-dma"'
  run 0 "$P/bin/keel" --list-modules
  has "$out" "crc32c-dma       device   1.0.0     $ABI   $W/crc32c-cxx/build/libkeel-device-crc32c-dma.so (KEEL_MODULE_PATH)"
  run 0 "$P/bin/keel" -M board.yaml -bios none -kernel crc32c-test.elf
  has "$out" "crc32-test: crc32c-dma"
  has "$out" "crc32-test: ok"
  # The CRC-32 program against the CRC-32C engine fails its known-answer check: the guest really compares.
  guest crc32-test.elf
  run 3 "$P/bin/keel" -M board.yaml -bios none -kernel crc32-test.elf
  has "$out" "check 03 failed: RESULT is 0xe3069283, expected 0xcbf43926"
  ;;

abi-old-minor)
  # Built with headers of ABI 1.0: loads, is marked as built for an older minor, and works.
  export KEEL_MODULE_PATH=$SDK_FIXTURES/abi-old-minor
  run 0 "$P/bin/keel" --list-modules
  has "$out" "crc32-dma        device   0.9.0     1.0*  $SDK_FIXTURES/abi-old-minor/libkeel-device-sdk-abi-old-minor.so (KEEL_MODULE_PATH)"
  has "$out" "* built against an older ABI minor: still loads; rebuild it against ABI $ABI to use what that minor added"
  lacks "$out" "Refused"
  guest crc32-test.elf
  run 0 "$P/bin/keel" -M "$EX/crc32/board.yaml" -bios none -kernel crc32-test.elf
  has "$out" "crc32-test: ok"
  ;;

abi-next-major)
  # Built with headers of ABI 2.0: refused, with the file, both versions and what to do, in the listing
  # and when a manifest needs its type.
  export KEEL_MODULE_PATH=$SDK_FIXTURES/abi-next-major
  f=$SDK_FIXTURES/abi-next-major/libkeel-device-sdk-abi-next-major.so
  msg="$f: module built for keel ABI 2.0, but this keel provides ABI $ABI; rebuild the module against keel ABI ${ABI%%.*}.x"
  run 0 "$P/bin/keel" --list-modules
  has "$out" "Refused modules:"
  has "$out" "  $msg"
  lacks "$out" "crc32-dma        device"
  guest crc32-test.elf
  run 1 "$P/bin/keel" -M "$EX/crc32/board.yaml" -bios none -kernel crc32-test.elf
  has "$err" "unknown device type 'crc32-dma'"
  has "$err" "keel: note: a module was refused: $msg"
  ;;

deb)
  # cpack -G DEB: keel and keel-dev, with the layout of the install; keel runs from the unpacked tree.
  run 0 "$CPACK_COMMAND" -G DEB -B "$W/pkg" --config "$KEEL_BUILD_DIR/CPackConfig.cmake"
  deb=$(ls "$W"/pkg/keel_*.deb)
  dev=$(ls "$W"/pkg/keel-dev_*.deb)
  run 0 dpkg-deb -c "$deb"
  has "$out" "./usr/bin/keel"
  has "$out" "./usr/lib/keel/device/libkeel-device-ns16550a.so"
  has "$out" "./usr/lib/keel/modules.index"
  has "$out" "./usr/share/keel/configs/riscv-virt.yaml"
  lacks "$out" "./usr/include"
  run 0 dpkg-deb -c "$dev"
  has "$out" "./usr/include/keel/module.h"
  has "$out" "./usr/lib/cmake/Keel/KeelConfig.cmake"
  has "$out" "./usr/lib/pkgconfig/keel-plugin.pc"
  has "$out" "./usr/share/doc/keel/writing-a-device.md"
  lacks "$out" "./usr/bin"
  run 0 dpkg-deb -f "$dev" Depends
  has "$out" "keel (= 0.1.0)"
  run 0 dpkg-deb -f "$deb" Depends
  has "$out" "libyaml-cpp"
  dpkg-deb -x "$deb" "$W/root"
  dpkg-deb -x "$dev" "$W/root"
  run 0 "$W/root/usr/bin/keel" --list-modules
  has "$out" "$W/root/usr/lib/keel (keel's prefix)"
  lacks "$out" "Refused"
  ;;

*) fail "unknown step" ;;
esac
echo "sdk.$step: ok"
