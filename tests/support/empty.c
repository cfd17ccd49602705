/* empty.c - keeps rt_test_support non-empty before any support code exists. */
typedef int rt_test_support_empty_unit;
