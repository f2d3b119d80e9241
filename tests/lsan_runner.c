/* tests/lsan_runner.c - under `make asan`, LeakSanitizer checks every test process but not
 * Criterion's runner, the parent process that starts them and runs only Criterion's code (our
 * tests have no constructors and no report hooks).
 *
 * Why: Criterion 2.4.1's runner leaks 48 bytes (calloc inside libcriterion.so.3, called from
 * criterion_run_all_tests) when several tests with a .timeout run in one process with --jobs 2
 * or more; a Criterion-only program of four such tests shows it. A suppression file cannot name
 * that leak alone: LSan suppresses a leak when any frame of its stack matches, and a test's own
 * allocations sit below Criterion's frames (criterion_internal_test_main), so
 * `leak:libcriterion.so` would hide our leaks too. BoxFort, Criterion's process layer, sets
 * BXFI_MAP in each test process (and never in the runner): that is how the two are told apart
 * (with --no-fork the tests run in the runner and go unchecked).
 * Without -fsanitize nothing calls this function. */
#include <stdlib.h>

int __lsan_is_turned_off(void);

__attribute__((used)) int __lsan_is_turned_off(void)
{
    return getenv("BXFI_MAP") == NULL;
}
