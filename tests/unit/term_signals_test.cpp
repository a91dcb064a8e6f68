// TermSignals: the first SIGTERM/SIGINT begins the shutdown, a second within a
// second is the same request, later ones hurry it.
#include <doctest/doctest.h>

#include "daemon/term_signals.hpp"

using chip::daemon::TermSignals;
using namespace std::chrono_literals;
using A = TermSignals::Action;

TEST_CASE("the first begins, one within a second is ignored, a later one hurries") {
    TermSignals t;
    CHECK(t.on_signal(100s, false) == A::Begin);
    CHECK(t.on_signal(100s, true) == A::Ignore);
    CHECK(t.on_signal(100s + 999ms, true) == A::Ignore);
    CHECK(t.on_signal(101s, true) == A::Hurry);
    CHECK(t.on_signal(200s, true) == A::Hurry);
}

TEST_CASE("the grace is measured from the first, not from the last ignored one") {
    TermSignals t;
    CHECK(t.on_signal(10s, false) == A::Begin);
    CHECK(t.on_signal(10s + 600ms, true) == A::Ignore);
    CHECK(t.on_signal(11s + 100ms, true) == A::Hurry);
}

TEST_CASE("a signal during a shutdown a command began hurries it at once") {
    TermSignals t;
    CHECK(t.on_signal(5s, true) == A::Hurry);
    CHECK(t.on_signal(5s + 10ms, true) == A::Ignore);
}
