// The main of the integration test programs: doctest's, plus what meson needs
// from a program that runs one case (meson.build registers each TEST_CASE as
// its own meson test, selected with --test-case=NAME):
//   * a case that ended by skip() (harness.hpp) makes the program exit 77,
//     meson's SKIP, unless one of its checks failed before;
//   * with $CHIP_TEST_ONE_CASE set, running anything but exactly one case is a
//     failure (a filter that selected none, or several).
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cstdlib>
#include <iostream>

#include "harness.hpp"

namespace {

struct Tally {
    int run = 0, passed = 0, failed = 0, skipped = 0;
};
Tally g_tally;

// Sorts each case into passed, failed or skipped. doctest itself counts a
// skipped case as failed: it ended by throwing Skipped.
struct SkipListener : doctest::IReporter {
    explicit SkipListener(const doctest::ContextOptions &) {}

    void test_case_start(const doctest::TestCaseData &) override {
        chip::test::take_skipped();
        ++g_tally.run;
    }
    void test_case_end(const doctest::CurrentTestCaseStats &st) override {
        namespace Reason = doctest::TestCaseFailureReason;
        constexpr int kOther =
            Reason::AssertFailure | Reason::Crash | Reason::TooManyFailedAsserts | Reason::Timeout;
        bool skipped = chip::test::take_skipped();
        bool threw = (st.failure_flags & Reason::Exception) != 0;
        bool other = (st.failure_flags & kOther) != 0;
        if (skipped && threw && !other && st.numAssertsFailedCurrentTest == 0) {
            ++g_tally.skipped;
        } else if (skipped && !threw) {
            std::cerr << "chip: skip() was called but its Skipped exception was caught: the case "
                         "counts as failed\n";
            ++g_tally.failed;
        } else if (!st.testCaseSuccess) {
            ++g_tally.failed;
        } else {
            ++g_tally.passed;
        }
    }

    void report_query(const doctest::QueryData &) override {}
    void test_run_start() override {}
    void test_run_end(const doctest::TestRunStats &) override {}
    void test_case_reenter(const doctest::TestCaseData &) override {}
    void test_case_exception(const doctest::TestCaseException &) override {}
    void subcase_start(const doctest::SubcaseSignature &) override {}
    void subcase_end() override {}
    void log_assert(const doctest::AssertData &) override {}
    void log_message(const doctest::MessageData &) override {}
    void test_case_skipped(const doctest::TestCaseData &) override {}
};

}  // namespace

REGISTER_LISTENER("chip-skip", 1, SkipListener);

REGISTER_EXCEPTION_TRANSLATOR(const chip::test::Skipped &s) {
    return doctest::String(("skipped: " + s.why).c_str());
}

int main(int argc, char **argv) {
    doctest::Context ctx(argc, argv);
    int rc = ctx.run();
    if (ctx.shouldExit()) return rc;
    const char *one = std::getenv("CHIP_TEST_ONE_CASE");
    if (one && *one && g_tally.run != 1) {
        std::cerr << "chip: " << g_tally.run
                  << " test cases ran: the --test-case filter must select exactly one\n";
        return 1;
    }
    if (g_tally.failed > 0) return rc != 0 ? rc : 1;
    if (g_tally.skipped > 0) {
        std::cerr << "chip: " << g_tally.skipped
                  << " test case(s) skipped (doctest counts them as failed above), "
                  << g_tally.passed << " passed\n";
        return g_tally.passed == 0 ? 77 : 0;
    }
    return rc;
}
