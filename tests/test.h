/* Minimal test harness: CHECK macros print what was expected and what was got, and the
 * test program exits non-zero when any check failed. */
#ifndef GB_TEST_H
#define GB_TEST_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int gb_test_failures = 0;
static int gb_test_checks = 0;

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        gb_test_checks++;                                                                          \
        if (!(cond)) {                                                                             \
            gb_test_failures++;                                                                    \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);               \
        }                                                                                          \
    } while (0)

#define CHECK_MSG(cond, ...)                                                                       \
    do {                                                                                           \
        gb_test_checks++;                                                                          \
        if (!(cond)) {                                                                             \
            gb_test_failures++;                                                                    \
            fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #cond);               \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
        }                                                                                          \
    } while (0)

#define CHECK_EQ_INT(a, b)                                                                         \
    do {                                                                                           \
        long long va_ = (long long)(a), vb_ = (long long)(b);                                      \
        CHECK_MSG(va_ == vb_, "expected %lld, got %lld", vb_, va_);                                \
    } while (0)

#define CHECK_STR(a, b)                                                                            \
    do {                                                                                           \
        const char *sa_ = (a), *sb_ = (b);                                                         \
        CHECK_MSG(sa_ && sb_ && strcmp(sa_, sb_) == 0, "expected \"%s\", got \"%s\"",              \
                  sb_ ? sb_ : "(null)", sa_ ? sa_ : "(null)");                                     \
    } while (0)

/* Checks that a gb_error-returning call succeeded, printing the message if not. */
#define CHECK_OK(call, errp)                                                                       \
    do {                                                                                           \
        int rc_ = (call);                                                                          \
        CHECK_MSG(rc_ == 0, "%s -> %d: %s", #call, rc_, (errp)->msg);                              \
    } while (0)

static inline const char *gb_test_data(void) {
    const char *d = getenv("GB_TEST_DATA");
    return d ? d : "data";
}

static inline const char *gb_test_tmp(void) {
    const char *d = getenv("GB_TEST_TMP");
    return d ? d : "/tmp/genbench-test";
}

#define TEST_MAIN_END()                                                                            \
    do {                                                                                           \
        fprintf(stderr, "%d checks, %d failed\n", gb_test_checks, gb_test_failures);               \
        return gb_test_failures ? 1 : 0;                                                           \
    } while (0)

#endif
