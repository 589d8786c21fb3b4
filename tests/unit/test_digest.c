/* Unit tests for src/util/digest.c. */
#include "sbx/digest.h"
#include "sbx/util.h"

#include <string.h>

#define HEX_EMPTY     "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define HEX_ABC       "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
#define HEX_MILLION_A "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"

static void test_hex64_valid(void)
{
  g_assert_true(sbx_hex64_valid(HEX_ABC));
  g_assert_true(
      sbx_hex64_valid("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"));
  g_assert_false(sbx_hex64_valid(NULL));
  g_assert_false(sbx_hex64_valid(""));
  g_assert_false(
      sbx_hex64_valid("BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD"));
  g_assert_false(sbx_hex64_valid(HEX_ABC "0")); /* 65 */
  g_assert_false(sbx_hex64_valid(&HEX_ABC[1])); /* 63 */
  g_assert_false(
      sbx_hex64_valid("g123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"));
  g_assert_false(
      sbx_hex64_valid("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde/"));
}

static void test_digest_valid(void)
{
  g_assert_true(sbx_digest_valid("sha256:" HEX_ABC));
  g_assert_false(sbx_digest_valid(NULL));
  g_assert_false(sbx_digest_valid(HEX_ABC)); /* no prefix */
  g_assert_false(sbx_digest_valid("sha256" HEX_ABC));
  g_assert_false(sbx_digest_valid("SHA256:" HEX_ABC));
  g_assert_false(sbx_digest_valid("sha256:"));
  g_assert_false(sbx_digest_valid("sha256:" HEX_ABC "00")); /* wrong length */
  g_assert_false(
      sbx_digest_valid("sha256:BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD"));
  g_assert_false(sbx_digest_valid("sha512:" HEX_ABC HEX_ABC));
  g_assert_false(sbx_digest_valid("sha256: " HEX_ABC));
}

static void assert_hex_refused(const char *digest)
{
  g_autoptr(GError) err = NULL;
  g_assert_null(sbx_digest_hex(digest, &err));
  g_assert_error(err, SBX_ERROR, SBX_ERROR_INVALID);
  g_assert_nonnull(strstr(err->message, "sha256:<64 hex digits>"));
}

static void test_digest_hex(void)
{
  g_autoptr(GError) err = NULL;
  const char *d = "sha256:" HEX_ABC;
  const char *hex = sbx_digest_hex(d, &err);
  g_assert_no_error(err);
  g_assert_true(hex == d + 7);
  g_assert_cmpstr(hex, ==, HEX_ABC);
  assert_hex_refused(NULL);
  assert_hex_refused(HEX_ABC);
  assert_hex_refused("sha256:" HEX_EMPTY "ff");
  assert_hex_refused("sha512:cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d1"
                     "3c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e");
  assert_hex_refused("sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855");
}

static void test_digest_hex_message_bounded(void)
{
  g_autofree char *junk = g_strnfill(5000, 'z');
  g_autoptr(GError) err = NULL;
  g_assert_null(sbx_digest_hex(junk, &err));
  g_assert_nonnull(err);
  g_assert_cmpuint(strlen(err->message), <, 200);
}

static void test_digest_bytes(void)
{
  g_autofree char *empty = sbx_digest_bytes("", 0);
  g_assert_cmpstr(empty, ==, "sha256:" HEX_EMPTY);
  g_autofree char *abc = sbx_digest_bytes("abc", 3);
  g_assert_cmpstr(abc, ==, "sha256:" HEX_ABC);
  g_assert_true(sbx_digest_valid(abc));
}

static void test_hasher_pieces(void)
{
  g_autoptr(SbxHasher) h = sbx_hasher_new();
  sbx_hasher_update(h, "a", 1);
  sbx_hasher_update(h, "", 0);
  sbx_hasher_update(h, "bc", 2);
  g_autofree char *got = sbx_hasher_finish(h);
  g_assert_cmpstr(got, ==, "sha256:" HEX_ABC);
}

static void test_hasher_large(void)
{
  gsize n = 1000000;
  g_autofree char *data = g_strnfill(n, 'a');
  g_autofree char *whole = sbx_digest_bytes(data, n);
  g_assert_cmpstr(whole, ==, "sha256:" HEX_MILLION_A);
  g_autoptr(SbxHasher) h = sbx_hasher_new();
  for (gsize off = 0; off < n; off += 4093)
    sbx_hasher_update(h, data + off, MIN((gsize)4093, n - off));
  g_autofree char *pieces = sbx_hasher_finish(h);
  g_assert_cmpstr(pieces, ==, whole);
}

static void test_hasher_empty(void)
{
  g_autoptr(SbxHasher) h = sbx_hasher_new();
  g_autofree char *got = sbx_hasher_finish(h);
  g_assert_cmpstr(got, ==, "sha256:" HEX_EMPTY);
}

int main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/digest/hex64-valid", test_hex64_valid);
  g_test_add_func("/digest/valid", test_digest_valid);
  g_test_add_func("/digest/hex", test_digest_hex);
  g_test_add_func("/digest/hex-message-bounded", test_digest_hex_message_bounded);
  g_test_add_func("/digest/bytes", test_digest_bytes);
  g_test_add_func("/digest/hasher-pieces", test_hasher_pieces);
  g_test_add_func("/digest/hasher-large", test_hasher_large);
  g_test_add_func("/digest/hasher-empty", test_hasher_empty);
  return g_test_run();
}
