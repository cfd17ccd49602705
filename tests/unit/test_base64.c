/* test_base64.c - RFC 4648 test vectors, padded and unpadded, both alphabets, bad input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "base64.h"

#include <string.h>

static const char *const plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
static const char *const padded[] = {"",         "Zg==",     "Zm8=",    "Zm9v",
                                     "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};

static void test_rfc4648_vectors_encode_and_decode(void **state)
{
    for (size_t i = 0; i < 7; i++) {
        rt_buf b = RT_BUF_INIT;
        rt_base64_encode(&b, (const uint8_t *)plain[i], strlen(plain[i]), true);
        assert_int_equal(b.len, strlen(padded[i]));
        assert_memory_equal(b.data ? (const char *)b.data : "", padded[i], b.len);
        rt_buf_reset(&b);
        /* Unpadded (gRPC -bin metadata) is the same without the '='. */
        rt_base64_encode(&b, (const uint8_t *)plain[i], strlen(plain[i]), false);
        size_t want = strcspn(padded[i], "=");
        assert_int_equal(b.len, want);
        uint8_t out[16];
        assert_int_equal(rt_base64_decode(padded[i], strlen(padded[i]), out),
                         (long)strlen(plain[i]));
        assert_memory_equal(out, plain[i], strlen(plain[i]));
        assert_int_equal(rt_base64_decode(padded[i], want, out), (long)strlen(plain[i]));
        rt_buf_free(&b);
    }
}

static void test_url_alphabet_accepted_and_garbage_rejected(void **state)
{
    uint8_t out[16];
    assert_int_equal(rt_base64_decode("-_8=", 4, out), 2);
    assert_int_equal(out[0], 0xfb);
    assert_int_equal(out[1], 0xff);
    assert_int_equal(rt_base64_decode("Zm9v!", 5, out), -1); /* bad digit */
    assert_int_equal(rt_base64_decode("Z", 1, out), -1);     /* impossible length */
    assert_int_equal(rt_base64_decode("Zg=", 3, out), -1);   /* padding that does not fit */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc4648_vectors_encode_and_decode),
        cmocka_unit_test(test_url_alphabet_accepted_and_garbage_rejected),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
