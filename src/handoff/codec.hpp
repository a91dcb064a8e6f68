// The hand-off's bytes (README.md, "Upgrading chipd in place"): a State
// written by one chipd and read by the next, which may be a newer or an older
// build. Versioned: a chipd reads its own version and the one before, and
// writes its own (or, for tests and for a newer program that asks for it, the
// one before).
//
// What it reads is checked whole before anything is returned: its length, a
// checksum, every count and index, every definition and node. A hand-off that
// is truncated, corrupted or of an unknown version is refused with the reason,
// never returned in part. Pure: bytes in, values out.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/result.hpp"
#include "handoff/state.hpp"

namespace chip::handoff {

inline constexpr std::uint32_t kVersion = 2;        // what this chipd writes
inline constexpr std::uint32_t kOldestVersion = 1;  // the oldest it reads

// True when this chipd reads hand-offs of VERSION.
inline bool accepts(std::uint32_t version) {
    return version >= kOldestVersion && version <= kVersion;
}

// STATE as bytes of format VERSION (accepts(version) must hold). Version 1
// leaves out what it did not have (State::systemd).
std::string encode(const State &state, std::uint32_t version = kVersion);

// The State BYTES hold. EINVAL with the reason ("hand-off: truncated: 120 of
// 4096 bytes", "hand-off: version 7 is not one this chipd reads (1 to 2)",
// "hand-off: checksum mismatch: corrupted", "hand-off: node 12 (web/api):
// unknown worker definition 40") when they are not a whole, sound hand-off;
// ENOMEM when memory runs out. Names read from BYTES are shown printable.
Result<State> decode(std::string_view bytes);

// The version a hand-off's header names, without checking the rest (0 when
// BYTES are too short to hold a header or do not start with its magic).
std::uint32_t version_of(std::string_view bytes);

// BYTES (a hand-off, whole or altered) with the header's payload length and
// checksum made to fit what follows the header: for tests and fuzzing, which
// make sound-looking hand-offs out of altered ones. BYTES shorter than a
// header are returned as they are.
std::string reseal(std::string bytes);

}  // namespace chip::handoff
